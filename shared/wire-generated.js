// Generated from shared/wire.proto by scripts/gen-wire.ts — do not edit; run `npm run gen:wire`.
/*eslint-disable block-scoped-var, id-length, no-control-regex, no-magic-numbers, no-mixed-operators, no-prototype-builtins, no-redeclare, no-shadow, no-var, sort-vars, default-case, jsdoc/require-param*/
import $protobuf from "protobufjs/minimal.js";

const $Reader = $protobuf.Reader, $Writer = $protobuf.Writer, $util = $protobuf.util;
const $Object = $util.global.Object, $undefined = $util.global.undefined, $Error = $util.global.Error, $RangeError = $util.global.RangeError;

const $root = $protobuf.roots["default"] || ($protobuf.roots["default"] = {});

export const hoptrace = $root.hoptrace = (() => {

    const hoptrace = {};

    hoptrace.HopEvent = (function() {

        const HopEvent = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        HopEvent.prototype.kind = 0;
        HopEvent.prototype.t = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        HopEvent.prototype.cpu = 0;
        HopEvent.prototype.skb = "";
        HopEvent.prototype.netns = 0;
        HopEvent.prototype.ifindex = 0;
        HopEvent.prototype.ifname = "";
        HopEvent.prototype.family = 0;
        HopEvent.prototype.proto = 0;
        HopEvent.prototype.len = 0;
        HopEvent.prototype.ip_id = 0;
        HopEvent.prototype.src = $util.newBuffer([]);
        HopEvent.prototype.dst = $util.newBuffer([]);
        HopEvent.prototype.sport = 0;
        HopEvent.prototype.dport = 0;
        HopEvent.prototype.icmp_type = 0;
        HopEvent.prototype.icmp_id = 0;
        HopEvent.prototype.tcp_flags = 0;
        HopEvent.prototype.tcp_seq = 0;
        HopEvent.prototype.reason = 0;
        HopEvent.prototype.head = $util.newBuffer([]);
        HopEvent.prototype.outer = null;
        HopEvent.prototype.sent = null;
        HopEvent.prototype.node = "";
        HopEvent.prototype.frag = 0;

        HopEvent.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.kind != null && $Object.hasOwnProperty.call(m, "kind") && m.kind !== 0)
                w.uint32(8).int32(m.kind);
            if (m.t != null && $Object.hasOwnProperty.call(m, "t") && (typeof m.t === "object" ? m.t.low || m.t.high : m.t !== 0))
                w.uint32(16).uint64(m.t);
            if (m.cpu != null && $Object.hasOwnProperty.call(m, "cpu") && m.cpu !== 0)
                w.uint32(24).uint32(m.cpu);
            if (m.skb != null && $Object.hasOwnProperty.call(m, "skb") && m.skb !== "")
                w.uint32(34).string(m.skb);
            if (m.netns != null && $Object.hasOwnProperty.call(m, "netns") && m.netns !== 0)
                w.uint32(40).uint32(m.netns);
            if (m.ifindex != null && $Object.hasOwnProperty.call(m, "ifindex") && m.ifindex !== 0)
                w.uint32(48).uint32(m.ifindex);
            if (m.ifname != null && $Object.hasOwnProperty.call(m, "ifname") && m.ifname !== "")
                w.uint32(58).string(m.ifname);
            if (m.family != null && $Object.hasOwnProperty.call(m, "family") && m.family !== 0)
                w.uint32(64).uint32(m.family);
            if (m.proto != null && $Object.hasOwnProperty.call(m, "proto") && m.proto !== 0)
                w.uint32(72).uint32(m.proto);
            if (m.len != null && $Object.hasOwnProperty.call(m, "len") && m.len !== 0)
                w.uint32(80).uint32(m.len);
            if (m.ip_id != null && $Object.hasOwnProperty.call(m, "ip_id") && m.ip_id !== 0)
                w.uint32(88).uint32(m.ip_id);
            if (m.src != null && $Object.hasOwnProperty.call(m, "src") && m.src.length)
                w.uint32(98).bytes(m.src);
            if (m.dst != null && $Object.hasOwnProperty.call(m, "dst") && m.dst.length)
                w.uint32(106).bytes(m.dst);
            if (m.sport != null && $Object.hasOwnProperty.call(m, "sport") && m.sport !== 0)
                w.uint32(112).uint32(m.sport);
            if (m.dport != null && $Object.hasOwnProperty.call(m, "dport") && m.dport !== 0)
                w.uint32(120).uint32(m.dport);
            if (m.icmp_type != null && $Object.hasOwnProperty.call(m, "icmp_type") && m.icmp_type !== 0)
                w.uint32(128).uint32(m.icmp_type);
            if (m.icmp_id != null && $Object.hasOwnProperty.call(m, "icmp_id") && m.icmp_id !== 0)
                w.uint32(136).uint32(m.icmp_id);
            if (m.tcp_flags != null && $Object.hasOwnProperty.call(m, "tcp_flags") && m.tcp_flags !== 0)
                w.uint32(144).uint32(m.tcp_flags);
            if (m.tcp_seq != null && $Object.hasOwnProperty.call(m, "tcp_seq") && m.tcp_seq !== 0)
                w.uint32(152).uint32(m.tcp_seq);
            if (m.reason != null && $Object.hasOwnProperty.call(m, "reason") && m.reason !== 0)
                w.uint32(160).uint32(m.reason);
            if (m.head != null && $Object.hasOwnProperty.call(m, "head") && m.head.length)
                w.uint32(170).bytes(m.head);
            if (m.outer != null && $Object.hasOwnProperty.call(m, "outer"))
                $root.hoptrace.HopOuter.encode(m.outer, w.uint32(178).fork(), q + 1).ldelim();
            if (m.sent != null && $Object.hasOwnProperty.call(m, "sent"))
                $root.hoptrace.HopSent.encode(m.sent, w.uint32(186).fork(), q + 1).ldelim();
            if (m.node != null && $Object.hasOwnProperty.call(m, "node") && m.node !== "")
                w.uint32(194).string(m.node);
            if (m.frag != null && $Object.hasOwnProperty.call(m, "frag") && m.frag !== 0)
                w.uint32(200).uint32(m.frag);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        HopEvent.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.HopEvent();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (v = r.int32())
                            m.kind = v;
                        else
                            delete m.kind;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.t = v;
                        else
                            delete m.t;
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.cpu = v;
                        else
                            delete m.cpu;
                        continue;
                    }
                case 4: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.skb = v;
                        else
                            delete m.skb;
                        continue;
                    }
                case 5: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.netns = v;
                        else
                            delete m.netns;
                        continue;
                    }
                case 6: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.ifindex = v;
                        else
                            delete m.ifindex;
                        continue;
                    }
                case 7: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.ifname = v;
                        else
                            delete m.ifname;
                        continue;
                    }
                case 8: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.family = v;
                        else
                            delete m.family;
                        continue;
                    }
                case 9: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.proto = v;
                        else
                            delete m.proto;
                        continue;
                    }
                case 10: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.len = v;
                        else
                            delete m.len;
                        continue;
                    }
                case 11: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.ip_id = v;
                        else
                            delete m.ip_id;
                        continue;
                    }
                case 12: {
                        if (u !== 2)
                            break;
                        if ((v = r.bytes()).length)
                            m.src = v;
                        else
                            delete m.src;
                        continue;
                    }
                case 13: {
                        if (u !== 2)
                            break;
                        if ((v = r.bytes()).length)
                            m.dst = v;
                        else
                            delete m.dst;
                        continue;
                    }
                case 14: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.sport = v;
                        else
                            delete m.sport;
                        continue;
                    }
                case 15: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.dport = v;
                        else
                            delete m.dport;
                        continue;
                    }
                case 16: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.icmp_type = v;
                        else
                            delete m.icmp_type;
                        continue;
                    }
                case 17: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.icmp_id = v;
                        else
                            delete m.icmp_id;
                        continue;
                    }
                case 18: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.tcp_flags = v;
                        else
                            delete m.tcp_flags;
                        continue;
                    }
                case 19: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.tcp_seq = v;
                        else
                            delete m.tcp_seq;
                        continue;
                    }
                case 20: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.reason = v;
                        else
                            delete m.reason;
                        continue;
                    }
                case 21: {
                        if (u !== 2)
                            break;
                        if ((v = r.bytes()).length)
                            m.head = v;
                        else
                            delete m.head;
                        continue;
                    }
                case 22: {
                        if (u !== 2)
                            break;
                        m.outer = $root.hoptrace.HopOuter.decode(r, r.size(), $undefined, q + 1, m.outer);
                        continue;
                    }
                case 23: {
                        if (u !== 2)
                            break;
                        m.sent = $root.hoptrace.HopSent.decode(r, r.size(), $undefined, q + 1, m.sent);
                        continue;
                    }
                case 24: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.node = v;
                        else
                            delete m.node;
                        continue;
                    }
                case 25: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.frag = v;
                        else
                            delete m.frag;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        HopEvent.Kind = (function() {
            const valuesById = $Object.create(null), values = $Object.create(valuesById);
            values[valuesById[0] = "XMIT"] = 0;
            values[valuesById[1] = "RX"] = 1;
            values[valuesById[2] = "RECV"] = 2;
            values[valuesById[3] = "DROP"] = 3;
            values[valuesById[4] = "CONSUME"] = 4;
            return values;
        })();

        return HopEvent;
    })();

    hoptrace.HopSent = (function() {

        const HopSent = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        HopSent.prototype.src = $util.newBuffer([]);
        HopSent.prototype.dst = $util.newBuffer([]);
        HopSent.prototype.sport = 0;
        HopSent.prototype.dport = 0;

        HopSent.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.src != null && $Object.hasOwnProperty.call(m, "src") && m.src.length)
                w.uint32(10).bytes(m.src);
            if (m.dst != null && $Object.hasOwnProperty.call(m, "dst") && m.dst.length)
                w.uint32(18).bytes(m.dst);
            if (m.sport != null && $Object.hasOwnProperty.call(m, "sport") && m.sport !== 0)
                w.uint32(24).uint32(m.sport);
            if (m.dport != null && $Object.hasOwnProperty.call(m, "dport") && m.dport !== 0)
                w.uint32(32).uint32(m.dport);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        HopSent.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.HopSent();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 2)
                            break;
                        if ((v = r.bytes()).length)
                            m.src = v;
                        else
                            delete m.src;
                        continue;
                    }
                case 2: {
                        if (u !== 2)
                            break;
                        if ((v = r.bytes()).length)
                            m.dst = v;
                        else
                            delete m.dst;
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.sport = v;
                        else
                            delete m.sport;
                        continue;
                    }
                case 4: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.dport = v;
                        else
                            delete m.dport;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return HopSent;
    })();

    hoptrace.HopOuter = (function() {

        const HopOuter = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        HopOuter.prototype.family = 0;
        HopOuter.prototype.proto = 0;
        HopOuter.prototype.src = $util.newBuffer([]);
        HopOuter.prototype.dst = $util.newBuffer([]);
        HopOuter.prototype.sport = 0;
        HopOuter.prototype.dport = 0;
        HopOuter.prototype.vni = 0;
        HopOuter.prototype.inner_read = false;
        HopOuter.prototype.ip_id = 0;
        HopOuter.prototype.frag = 0;

        HopOuter.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.family != null && $Object.hasOwnProperty.call(m, "family") && m.family !== 0)
                w.uint32(8).uint32(m.family);
            if (m.proto != null && $Object.hasOwnProperty.call(m, "proto") && m.proto !== 0)
                w.uint32(16).uint32(m.proto);
            if (m.src != null && $Object.hasOwnProperty.call(m, "src") && m.src.length)
                w.uint32(26).bytes(m.src);
            if (m.dst != null && $Object.hasOwnProperty.call(m, "dst") && m.dst.length)
                w.uint32(34).bytes(m.dst);
            if (m.sport != null && $Object.hasOwnProperty.call(m, "sport") && m.sport !== 0)
                w.uint32(40).uint32(m.sport);
            if (m.dport != null && $Object.hasOwnProperty.call(m, "dport") && m.dport !== 0)
                w.uint32(48).uint32(m.dport);
            if (m.vni != null && $Object.hasOwnProperty.call(m, "vni") && m.vni !== 0)
                w.uint32(56).uint32(m.vni);
            if (m.inner_read != null && $Object.hasOwnProperty.call(m, "inner_read") && m.inner_read !== false)
                w.uint32(64).bool(m.inner_read);
            if (m.ip_id != null && $Object.hasOwnProperty.call(m, "ip_id") && m.ip_id !== 0)
                w.uint32(72).uint32(m.ip_id);
            if (m.frag != null && $Object.hasOwnProperty.call(m, "frag") && m.frag !== 0)
                w.uint32(80).uint32(m.frag);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        HopOuter.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.HopOuter();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.family = v;
                        else
                            delete m.family;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.proto = v;
                        else
                            delete m.proto;
                        continue;
                    }
                case 3: {
                        if (u !== 2)
                            break;
                        if ((v = r.bytes()).length)
                            m.src = v;
                        else
                            delete m.src;
                        continue;
                    }
                case 4: {
                        if (u !== 2)
                            break;
                        if ((v = r.bytes()).length)
                            m.dst = v;
                        else
                            delete m.dst;
                        continue;
                    }
                case 5: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.sport = v;
                        else
                            delete m.sport;
                        continue;
                    }
                case 6: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.dport = v;
                        else
                            delete m.dport;
                        continue;
                    }
                case 7: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.vni = v;
                        else
                            delete m.vni;
                        continue;
                    }
                case 8: {
                        if (u !== 0)
                            break;
                        if (v = r.bool())
                            m.inner_read = v;
                        else
                            delete m.inner_read;
                        continue;
                    }
                case 9: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.ip_id = v;
                        else
                            delete m.ip_id;
                        continue;
                    }
                case 10: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.frag = v;
                        else
                            delete m.frag;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return HopOuter;
    })();

    hoptrace.HopBatch = (function() {

        const HopBatch = function (p) {
            this.events = [];
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        HopBatch.prototype.events = $util.emptyArray;
        HopBatch.prototype.seq = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        HopBatch.prototype.lost_kernel = 0;
        HopBatch.prototype.clock = $util.Long ? $util.Long.fromBits(0,0,true) : 0;

        HopBatch.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.events != null && m.events.length) {
                for (var i = 0; i < m.events.length; ++i)
                    $root.hoptrace.HopEvent.encode(m.events[i], w.uint32(10).fork(), q + 1).ldelim();
            }
            if (m.seq != null && $Object.hasOwnProperty.call(m, "seq") && (typeof m.seq === "object" ? m.seq.low || m.seq.high : m.seq !== 0))
                w.uint32(16).uint64(m.seq);
            if (m.lost_kernel != null && $Object.hasOwnProperty.call(m, "lost_kernel") && m.lost_kernel !== 0)
                w.uint32(24).uint32(m.lost_kernel);
            if (m.clock != null && $Object.hasOwnProperty.call(m, "clock") && (typeof m.clock === "object" ? m.clock.low || m.clock.high : m.clock !== 0))
                w.uint32(32).uint64(m.clock);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        HopBatch.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.HopBatch();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 2)
                            break;
                        if (!(m.events && m.events.length))
                            m.events = [];
                        m.events.push($root.hoptrace.HopEvent.decode(r, r.size(), $undefined, q + 1));
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.seq = v;
                        else
                            delete m.seq;
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.lost_kernel = v;
                        else
                            delete m.lost_kernel;
                        continue;
                    }
                case 4: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.clock = v;
                        else
                            delete m.clock;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return HopBatch;
    })();

    hoptrace.NamespaceName = (function() {

        const NamespaceName = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        NamespaceName.prototype.netns = 0;
        NamespaceName.prototype.name = "";

        NamespaceName.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.netns != null && $Object.hasOwnProperty.call(m, "netns") && m.netns !== 0)
                w.uint32(8).uint32(m.netns);
            if (m.name != null && $Object.hasOwnProperty.call(m, "name") && m.name !== "")
                w.uint32(18).string(m.name);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        NamespaceName.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.NamespaceName();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.netns = v;
                        else
                            delete m.netns;
                        continue;
                    }
                case 2: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.name = v;
                        else
                            delete m.name;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return NamespaceName;
    })();

    hoptrace.RecordingHeader = (function() {

        const RecordingHeader = function (p) {
            this.probes = [];
            this.drop_reasons = {};
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        RecordingHeader.prototype.host = "";
        RecordingHeader.prototype.kernel = "";
        RecordingHeader.prototype.bpftrace_version = "";
        RecordingHeader.prototype.probes = $util.emptyArray;
        RecordingHeader.prototype.filter = "";
        RecordingHeader.prototype.start_wall_ns = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        RecordingHeader.prototype.start_mono_ns = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        RecordingHeader.prototype.drop_reasons = $util.emptyObject;
        RecordingHeader.prototype.recorder = "";
        RecordingHeader.prototype.netfilter = false;
        RecordingHeader.prototype.notes = false;
        RecordingHeader.prototype.sample_rate = 0;
        RecordingHeader.prototype.probe_tier = "";

        RecordingHeader.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.host != null && $Object.hasOwnProperty.call(m, "host") && m.host !== "")
                w.uint32(10).string(m.host);
            if (m.kernel != null && $Object.hasOwnProperty.call(m, "kernel") && m.kernel !== "")
                w.uint32(18).string(m.kernel);
            if (m.bpftrace_version != null && $Object.hasOwnProperty.call(m, "bpftrace_version") && m.bpftrace_version !== "")
                w.uint32(26).string(m.bpftrace_version);
            if (m.probes != null && m.probes.length) {
                for (var i = 0; i < m.probes.length; ++i)
                    w.uint32(34).string(m.probes[i]);
            }
            if (m.filter != null && $Object.hasOwnProperty.call(m, "filter") && m.filter !== "")
                w.uint32(42).string(m.filter);
            if (m.start_wall_ns != null && $Object.hasOwnProperty.call(m, "start_wall_ns") && (typeof m.start_wall_ns === "object" ? m.start_wall_ns.low || m.start_wall_ns.high : m.start_wall_ns !== 0))
                w.uint32(48).uint64(m.start_wall_ns);
            if (m.start_mono_ns != null && $Object.hasOwnProperty.call(m, "start_mono_ns") && (typeof m.start_mono_ns === "object" ? m.start_mono_ns.low || m.start_mono_ns.high : m.start_mono_ns !== 0))
                w.uint32(56).uint64(m.start_mono_ns);
            if (m.drop_reasons != null && $Object.hasOwnProperty.call(m, "drop_reasons")) {
                for (var ks = $Object.keys(m.drop_reasons), i = 0; i < ks.length; ++i) {
                    w.uint32(66).fork().uint32(8).uint32(ks[i]).uint32(18).string(m.drop_reasons[ks[i]]).ldelim();
                }
            }
            if (m.recorder != null && $Object.hasOwnProperty.call(m, "recorder") && m.recorder !== "")
                w.uint32(74).string(m.recorder);
            if (m.netfilter != null && $Object.hasOwnProperty.call(m, "netfilter") && m.netfilter !== false)
                w.uint32(80).bool(m.netfilter);
            if (m.notes != null && $Object.hasOwnProperty.call(m, "notes") && m.notes !== false)
                w.uint32(88).bool(m.notes);
            if (m.sample_rate != null && $Object.hasOwnProperty.call(m, "sample_rate") && m.sample_rate !== 0)
                w.uint32(96).uint32(m.sample_rate);
            if (m.probe_tier != null && $Object.hasOwnProperty.call(m, "probe_tier") && m.probe_tier !== "")
                w.uint32(106).string(m.probe_tier);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        RecordingHeader.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, k, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.RecordingHeader();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.host = v;
                        else
                            delete m.host;
                        continue;
                    }
                case 2: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.kernel = v;
                        else
                            delete m.kernel;
                        continue;
                    }
                case 3: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.bpftrace_version = v;
                        else
                            delete m.bpftrace_version;
                        continue;
                    }
                case 4: {
                        if (u !== 2)
                            break;
                        if (!(m.probes && m.probes.length))
                            m.probes = [];
                        m.probes.push(r.stringVerify());
                        continue;
                    }
                case 5: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.filter = v;
                        else
                            delete m.filter;
                        continue;
                    }
                case 6: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.start_wall_ns = v;
                        else
                            delete m.start_wall_ns;
                        continue;
                    }
                case 7: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.start_mono_ns = v;
                        else
                            delete m.start_mono_ns;
                        continue;
                    }
                case 8: {
                        if (u !== 2)
                            break;
                        if (m.drop_reasons === $util.emptyObject)
                            m.drop_reasons = {};
                        var c2 = r.size() + r.pos;
                        if (c2 > r.len)
                            throw $RangeError("index out of range");
                        r.len = c2;
                        k = 0;
                        v = "";
                        while (r.pos < c2) {
                            var t2 = r.tag();
                            u = t2 & 7;
                            switch (t2 >>>= 3) {
                            case 1:
                                if (u !== 0)
                                    break;
                                k = r.uint32();
                                continue;
                            case 2:
                                if (u !== 2)
                                    break;
                                v = r.stringVerify();
                                continue;
                            }
                            r.skipType(u, q, t2);
                        }
                        if (r.pos !== c2)
                            throw $RangeError("index out of range");
                        r.len = c;
                        m.drop_reasons[k] = v;
                        continue;
                    }
                case 9: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.recorder = v;
                        else
                            delete m.recorder;
                        continue;
                    }
                case 10: {
                        if (u !== 0)
                            break;
                        if (v = r.bool())
                            m.netfilter = v;
                        else
                            delete m.netfilter;
                        continue;
                    }
                case 11: {
                        if (u !== 0)
                            break;
                        if (v = r.bool())
                            m.notes = v;
                        else
                            delete m.notes;
                        continue;
                    }
                case 12: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.sample_rate = v;
                        else
                            delete m.sample_rate;
                        continue;
                    }
                case 13: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.probe_tier = v;
                        else
                            delete m.probe_tier;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return RecordingHeader;
    })();

    hoptrace.TopologyRecord = (function() {

        const TopologyRecord = function (p) {
            this.namespaces = [];
            this.removed = [];
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        TopologyRecord.prototype.t = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        TopologyRecord.prototype.snapshot = false;
        TopologyRecord.prototype.namespaces = $util.emptyArray;
        TopologyRecord.prototype.model_json = "";
        TopologyRecord.prototype.prev_offset = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        TopologyRecord.prototype.removed = $util.emptyArray;

        TopologyRecord.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.t != null && $Object.hasOwnProperty.call(m, "t") && (typeof m.t === "object" ? m.t.low || m.t.high : m.t !== 0))
                w.uint32(8).uint64(m.t);
            if (m.snapshot != null && $Object.hasOwnProperty.call(m, "snapshot") && m.snapshot !== false)
                w.uint32(16).bool(m.snapshot);
            if (m.namespaces != null && m.namespaces.length) {
                for (var i = 0; i < m.namespaces.length; ++i)
                    $root.hoptrace.NamespaceName.encode(m.namespaces[i], w.uint32(26).fork(), q + 1).ldelim();
            }
            if (m.model_json != null && $Object.hasOwnProperty.call(m, "model_json") && m.model_json !== "")
                w.uint32(34).string(m.model_json);
            if (m.prev_offset != null && $Object.hasOwnProperty.call(m, "prev_offset") && (typeof m.prev_offset === "object" ? m.prev_offset.low || m.prev_offset.high : m.prev_offset !== 0))
                w.uint32(40).uint64(m.prev_offset);
            if (m.removed != null && m.removed.length) {
                w.uint32(50).uint32s(m.removed);
            }
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        TopologyRecord.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.TopologyRecord();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.t = v;
                        else
                            delete m.t;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (v = r.bool())
                            m.snapshot = v;
                        else
                            delete m.snapshot;
                        continue;
                    }
                case 3: {
                        if (u !== 2)
                            break;
                        if (!(m.namespaces && m.namespaces.length))
                            m.namespaces = [];
                        m.namespaces.push($root.hoptrace.NamespaceName.decode(r, r.size(), $undefined, q + 1));
                        continue;
                    }
                case 4: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.model_json = v;
                        else
                            delete m.model_json;
                        continue;
                    }
                case 5: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.prev_offset = v;
                        else
                            delete m.prev_offset;
                        continue;
                    }
                case 6: {
                        if (u === 2) {
                            if (!(m.removed && m.removed.length))
                                m.removed = [];
                            r.uint32s(m.removed);
                            continue;
                        }
                        if (u !== 0)
                            break;
                        if (!(m.removed && m.removed.length))
                            m.removed = [];
                        m.removed.push(r.uint32());
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return TopologyRecord;
    })();

    hoptrace.LostRecord = (function() {

        const LostRecord = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        LostRecord.prototype.t = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        LostRecord.prototype.count = $util.Long ? $util.Long.fromBits(0,0,true) : 0;

        LostRecord.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.t != null && $Object.hasOwnProperty.call(m, "t") && (typeof m.t === "object" ? m.t.low || m.t.high : m.t !== 0))
                w.uint32(8).uint64(m.t);
            if (m.count != null && $Object.hasOwnProperty.call(m, "count") && (typeof m.count === "object" ? m.count.low || m.count.high : m.count !== 0))
                w.uint32(16).uint64(m.count);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        LostRecord.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.LostRecord();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.t = v;
                        else
                            delete m.t;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.count = v;
                        else
                            delete m.count;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return LostRecord;
    })();

    hoptrace.IndexRecord = (function() {

        const IndexRecord = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        IndexRecord.prototype.max_t_before = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        IndexRecord.prototype.events_before = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        IndexRecord.prototype.lost_before = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        IndexRecord.prototype.topology_offset = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        IndexRecord.prototype.offset = $util.Long ? $util.Long.fromBits(0,0,true) : 0;

        IndexRecord.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.max_t_before != null && $Object.hasOwnProperty.call(m, "max_t_before") && (typeof m.max_t_before === "object" ? m.max_t_before.low || m.max_t_before.high : m.max_t_before !== 0))
                w.uint32(8).uint64(m.max_t_before);
            if (m.events_before != null && $Object.hasOwnProperty.call(m, "events_before") && (typeof m.events_before === "object" ? m.events_before.low || m.events_before.high : m.events_before !== 0))
                w.uint32(16).uint64(m.events_before);
            if (m.lost_before != null && $Object.hasOwnProperty.call(m, "lost_before") && (typeof m.lost_before === "object" ? m.lost_before.low || m.lost_before.high : m.lost_before !== 0))
                w.uint32(24).uint64(m.lost_before);
            if (m.topology_offset != null && $Object.hasOwnProperty.call(m, "topology_offset") && (typeof m.topology_offset === "object" ? m.topology_offset.low || m.topology_offset.high : m.topology_offset !== 0))
                w.uint32(32).uint64(m.topology_offset);
            if (m.offset != null && $Object.hasOwnProperty.call(m, "offset") && (typeof m.offset === "object" ? m.offset.low || m.offset.high : m.offset !== 0))
                w.uint32(40).uint64(m.offset);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        IndexRecord.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.IndexRecord();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.max_t_before = v;
                        else
                            delete m.max_t_before;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.events_before = v;
                        else
                            delete m.events_before;
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.lost_before = v;
                        else
                            delete m.lost_before;
                        continue;
                    }
                case 4: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.topology_offset = v;
                        else
                            delete m.topology_offset;
                        continue;
                    }
                case 5: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.offset = v;
                        else
                            delete m.offset;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return IndexRecord;
    })();

    hoptrace.EndRecord = (function() {

        const EndRecord = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        EndRecord.prototype.t = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        EndRecord.prototype.wall_ns = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        EndRecord.prototype.events = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        EndRecord.prototype.lost = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        EndRecord.prototype.packets = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        EndRecord.prototype.reason = "";

        EndRecord.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.t != null && $Object.hasOwnProperty.call(m, "t") && (typeof m.t === "object" ? m.t.low || m.t.high : m.t !== 0))
                w.uint32(8).uint64(m.t);
            if (m.wall_ns != null && $Object.hasOwnProperty.call(m, "wall_ns") && (typeof m.wall_ns === "object" ? m.wall_ns.low || m.wall_ns.high : m.wall_ns !== 0))
                w.uint32(16).uint64(m.wall_ns);
            if (m.events != null && $Object.hasOwnProperty.call(m, "events") && (typeof m.events === "object" ? m.events.low || m.events.high : m.events !== 0))
                w.uint32(24).uint64(m.events);
            if (m.lost != null && $Object.hasOwnProperty.call(m, "lost") && (typeof m.lost === "object" ? m.lost.low || m.lost.high : m.lost !== 0))
                w.uint32(32).uint64(m.lost);
            if (m.packets != null && $Object.hasOwnProperty.call(m, "packets") && (typeof m.packets === "object" ? m.packets.low || m.packets.high : m.packets !== 0))
                w.uint32(40).uint64(m.packets);
            if (m.reason != null && $Object.hasOwnProperty.call(m, "reason") && m.reason !== "")
                w.uint32(50).string(m.reason);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        EndRecord.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.EndRecord();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.t = v;
                        else
                            delete m.t;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.wall_ns = v;
                        else
                            delete m.wall_ns;
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.events = v;
                        else
                            delete m.events;
                        continue;
                    }
                case 4: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.lost = v;
                        else
                            delete m.lost;
                        continue;
                    }
                case 5: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.packets = v;
                        else
                            delete m.packets;
                        continue;
                    }
                case 6: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.reason = v;
                        else
                            delete m.reason;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return EndRecord;
    })();

    hoptrace.ClockRecord = (function() {

        const ClockRecord = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        ClockRecord.prototype.t = $util.Long ? $util.Long.fromBits(0,0,true) : 0;

        ClockRecord.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.t != null && $Object.hasOwnProperty.call(m, "t") && (typeof m.t === "object" ? m.t.low || m.t.high : m.t !== 0))
                w.uint32(8).uint64(m.t);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        ClockRecord.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.ClockRecord();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.t = v;
                        else
                            delete m.t;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return ClockRecord;
    })();

    hoptrace.HopNote = (function() {

        const HopNote = function (p) {
            this.num = {};
            this.text = {};
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        HopNote.prototype.kind = "";
        HopNote.prototype.t = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        HopNote.prototype.cpu = 0;
        HopNote.prototype.skb = "";
        HopNote.prototype.netns = 0;
        HopNote.prototype.num = $util.emptyObject;
        HopNote.prototype.text = $util.emptyObject;
        HopNote.prototype.node = "";

        HopNote.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.kind != null && $Object.hasOwnProperty.call(m, "kind") && m.kind !== "")
                w.uint32(10).string(m.kind);
            if (m.t != null && $Object.hasOwnProperty.call(m, "t") && (typeof m.t === "object" ? m.t.low || m.t.high : m.t !== 0))
                w.uint32(16).uint64(m.t);
            if (m.cpu != null && $Object.hasOwnProperty.call(m, "cpu") && m.cpu !== 0)
                w.uint32(24).uint32(m.cpu);
            if (m.skb != null && $Object.hasOwnProperty.call(m, "skb") && m.skb !== "")
                w.uint32(34).string(m.skb);
            if (m.netns != null && $Object.hasOwnProperty.call(m, "netns") && m.netns !== 0)
                w.uint32(40).uint32(m.netns);
            if (m.num != null && $Object.hasOwnProperty.call(m, "num")) {
                for (var ks = $Object.keys(m.num), i = 0; i < ks.length; ++i) {
                    w.uint32(50).fork().uint32(10).string(ks[i]).uint32(16).sint64(m.num[ks[i]]).ldelim();
                }
            }
            if (m.text != null && $Object.hasOwnProperty.call(m, "text")) {
                for (var ks = $Object.keys(m.text), i = 0; i < ks.length; ++i) {
                    w.uint32(58).fork().uint32(10).string(ks[i]).uint32(18).string(m.text[ks[i]]).ldelim();
                }
            }
            if (m.node != null && $Object.hasOwnProperty.call(m, "node") && m.node !== "")
                w.uint32(66).string(m.node);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        HopNote.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, k, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.HopNote();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.kind = v;
                        else
                            delete m.kind;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.t = v;
                        else
                            delete m.t;
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.cpu = v;
                        else
                            delete m.cpu;
                        continue;
                    }
                case 4: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.skb = v;
                        else
                            delete m.skb;
                        continue;
                    }
                case 5: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.netns = v;
                        else
                            delete m.netns;
                        continue;
                    }
                case 6: {
                        if (u !== 2)
                            break;
                        if (m.num === $util.emptyObject)
                            m.num = {};
                        var c2 = r.size() + r.pos;
                        if (c2 > r.len)
                            throw $RangeError("index out of range");
                        r.len = c2;
                        k = "";
                        v = $util.Long ? $util.Long.fromNumber(0, false) : 0;
                        while (r.pos < c2) {
                            var t2 = r.tag();
                            u = t2 & 7;
                            switch (t2 >>>= 3) {
                            case 1:
                                if (u !== 2)
                                    break;
                                k = r.stringVerify();
                                continue;
                            case 2:
                                if (u !== 0)
                                    break;
                                v = r.sint64();
                                continue;
                            }
                            r.skipType(u, q, t2);
                        }
                        if (r.pos !== c2)
                            throw $RangeError("index out of range");
                        r.len = c;
                        if (k === "__proto__")
                            $util.makeProp(m.num, k);
                        m.num[k] = v;
                        continue;
                    }
                case 7: {
                        if (u !== 2)
                            break;
                        if (m.text === $util.emptyObject)
                            m.text = {};
                        var c2 = r.size() + r.pos;
                        if (c2 > r.len)
                            throw $RangeError("index out of range");
                        r.len = c2;
                        k = "";
                        v = "";
                        while (r.pos < c2) {
                            var t2 = r.tag();
                            u = t2 & 7;
                            switch (t2 >>>= 3) {
                            case 1:
                                if (u !== 2)
                                    break;
                                k = r.stringVerify();
                                continue;
                            case 2:
                                if (u !== 2)
                                    break;
                                v = r.stringVerify();
                                continue;
                            }
                            r.skipType(u, q, t2);
                        }
                        if (r.pos !== c2)
                            throw $RangeError("index out of range");
                        r.len = c;
                        if (k === "__proto__")
                            $util.makeProp(m.text, k);
                        m.text[k] = v;
                        continue;
                    }
                case 8: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.node = v;
                        else
                            delete m.node;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return HopNote;
    })();

    hoptrace.NetfilterEvent = (function() {

        const NetfilterEvent = function (p) {
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        NetfilterEvent.prototype.ns = "";
        NetfilterEvent.prototype.netns = 0;
        NetfilterEvent.prototype.t = $util.Long ? $util.Long.fromBits(0,0,true) : 0;
        NetfilterEvent.prototype.trace_id = "";
        NetfilterEvent.prototype.family = "";
        NetfilterEvent.prototype.table = "";
        NetfilterEvent.prototype.chain = "";
        NetfilterEvent.prototype.hook = "";
        NetfilterEvent.prototype.type = "";
        NetfilterEvent.prototype.rule = "";
        NetfilterEvent.prototype.handle = $util.Long ? $util.Long.fromBits(0,0,false) : 0;
        NetfilterEvent.prototype.verdict = "";
        NetfilterEvent.prototype.nat = "";
        NetfilterEvent.prototype.iif = "";
        NetfilterEvent.prototype.oif = "";
        NetfilterEvent.prototype.pkt_family = 0;
        NetfilterEvent.prototype.proto = 0;
        NetfilterEvent.prototype.src = "";
        NetfilterEvent.prototype.dst = "";
        NetfilterEvent.prototype.sport = 0;
        NetfilterEvent.prototype.dport = 0;
        NetfilterEvent.prototype.ip_id = 0;
        NetfilterEvent.prototype.len = 0;
        NetfilterEvent.prototype.tcp_seq = 0;
        NetfilterEvent.prototype.icmp_id = 0;
        NetfilterEvent.prototype.node = "";

        NetfilterEvent.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.ns != null && $Object.hasOwnProperty.call(m, "ns") && m.ns !== "")
                w.uint32(10).string(m.ns);
            if (m.netns != null && $Object.hasOwnProperty.call(m, "netns") && m.netns !== 0)
                w.uint32(16).uint32(m.netns);
            if (m.t != null && $Object.hasOwnProperty.call(m, "t") && (typeof m.t === "object" ? m.t.low || m.t.high : m.t !== 0))
                w.uint32(24).uint64(m.t);
            if (m.trace_id != null && $Object.hasOwnProperty.call(m, "trace_id") && m.trace_id !== "")
                w.uint32(34).string(m.trace_id);
            if (m.family != null && $Object.hasOwnProperty.call(m, "family") && m.family !== "")
                w.uint32(42).string(m.family);
            if (m.table != null && $Object.hasOwnProperty.call(m, "table") && m.table !== "")
                w.uint32(50).string(m.table);
            if (m.chain != null && $Object.hasOwnProperty.call(m, "chain") && m.chain !== "")
                w.uint32(58).string(m.chain);
            if (m.hook != null && $Object.hasOwnProperty.call(m, "hook") && m.hook !== "")
                w.uint32(66).string(m.hook);
            if (m.type != null && $Object.hasOwnProperty.call(m, "type") && m.type !== "")
                w.uint32(74).string(m.type);
            if (m.rule != null && $Object.hasOwnProperty.call(m, "rule") && m.rule !== "")
                w.uint32(82).string(m.rule);
            if (m.handle != null && $Object.hasOwnProperty.call(m, "handle") && (typeof m.handle === "object" ? m.handle.low || m.handle.high : m.handle !== 0))
                w.uint32(88).int64(m.handle);
            if (m.verdict != null && $Object.hasOwnProperty.call(m, "verdict") && m.verdict !== "")
                w.uint32(98).string(m.verdict);
            if (m.nat != null && $Object.hasOwnProperty.call(m, "nat") && m.nat !== "")
                w.uint32(106).string(m.nat);
            if (m.iif != null && $Object.hasOwnProperty.call(m, "iif") && m.iif !== "")
                w.uint32(114).string(m.iif);
            if (m.oif != null && $Object.hasOwnProperty.call(m, "oif") && m.oif !== "")
                w.uint32(122).string(m.oif);
            if (m.pkt_family != null && $Object.hasOwnProperty.call(m, "pkt_family") && m.pkt_family !== 0)
                w.uint32(128).uint32(m.pkt_family);
            if (m.proto != null && $Object.hasOwnProperty.call(m, "proto") && m.proto !== 0)
                w.uint32(136).uint32(m.proto);
            if (m.src != null && $Object.hasOwnProperty.call(m, "src") && m.src !== "")
                w.uint32(146).string(m.src);
            if (m.dst != null && $Object.hasOwnProperty.call(m, "dst") && m.dst !== "")
                w.uint32(154).string(m.dst);
            if (m.sport != null && $Object.hasOwnProperty.call(m, "sport") && m.sport !== 0)
                w.uint32(160).uint32(m.sport);
            if (m.dport != null && $Object.hasOwnProperty.call(m, "dport") && m.dport !== 0)
                w.uint32(168).uint32(m.dport);
            if (m.ip_id != null && $Object.hasOwnProperty.call(m, "ip_id") && m.ip_id !== 0)
                w.uint32(176).uint32(m.ip_id);
            if (m.len != null && $Object.hasOwnProperty.call(m, "len") && m.len !== 0)
                w.uint32(184).uint32(m.len);
            if (m.tcp_seq != null && $Object.hasOwnProperty.call(m, "tcp_seq") && m.tcp_seq !== 0)
                w.uint32(192).uint32(m.tcp_seq);
            if (m.icmp_id != null && $Object.hasOwnProperty.call(m, "icmp_id") && m.icmp_id !== 0)
                w.uint32(200).uint32(m.icmp_id);
            if (m.node != null && $Object.hasOwnProperty.call(m, "node") && m.node !== "")
                w.uint32(210).string(m.node);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        NetfilterEvent.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.NetfilterEvent();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.ns = v;
                        else
                            delete m.ns;
                        continue;
                    }
                case 2: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.netns = v;
                        else
                            delete m.netns;
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.t = v;
                        else
                            delete m.t;
                        continue;
                    }
                case 4: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.trace_id = v;
                        else
                            delete m.trace_id;
                        continue;
                    }
                case 5: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.family = v;
                        else
                            delete m.family;
                        continue;
                    }
                case 6: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.table = v;
                        else
                            delete m.table;
                        continue;
                    }
                case 7: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.chain = v;
                        else
                            delete m.chain;
                        continue;
                    }
                case 8: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.hook = v;
                        else
                            delete m.hook;
                        continue;
                    }
                case 9: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.type = v;
                        else
                            delete m.type;
                        continue;
                    }
                case 10: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.rule = v;
                        else
                            delete m.rule;
                        continue;
                    }
                case 11: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.int64()) === "object" ? v.low || v.high : v !== 0)
                            m.handle = v;
                        else
                            delete m.handle;
                        continue;
                    }
                case 12: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.verdict = v;
                        else
                            delete m.verdict;
                        continue;
                    }
                case 13: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.nat = v;
                        else
                            delete m.nat;
                        continue;
                    }
                case 14: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.iif = v;
                        else
                            delete m.iif;
                        continue;
                    }
                case 15: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.oif = v;
                        else
                            delete m.oif;
                        continue;
                    }
                case 16: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.pkt_family = v;
                        else
                            delete m.pkt_family;
                        continue;
                    }
                case 17: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.proto = v;
                        else
                            delete m.proto;
                        continue;
                    }
                case 18: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.src = v;
                        else
                            delete m.src;
                        continue;
                    }
                case 19: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.dst = v;
                        else
                            delete m.dst;
                        continue;
                    }
                case 20: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.sport = v;
                        else
                            delete m.sport;
                        continue;
                    }
                case 21: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.dport = v;
                        else
                            delete m.dport;
                        continue;
                    }
                case 22: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.ip_id = v;
                        else
                            delete m.ip_id;
                        continue;
                    }
                case 23: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.len = v;
                        else
                            delete m.len;
                        continue;
                    }
                case 24: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.tcp_seq = v;
                        else
                            delete m.tcp_seq;
                        continue;
                    }
                case 25: {
                        if (u !== 0)
                            break;
                        if (v = r.uint32())
                            m.icmp_id = v;
                        else
                            delete m.icmp_id;
                        continue;
                    }
                case 26: {
                        if (u !== 2)
                            break;
                        if ((v = r.stringVerify()).length)
                            m.node = v;
                        else
                            delete m.node;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return NetfilterEvent;
    })();

    hoptrace.DepthBatch = (function() {

        const DepthBatch = function (p) {
            this.notes = [];
            this.netfilter = [];
            if (p)
                for (var ks = $Object.keys(p), i = 0; i < ks.length; ++i)
                    if (p[ks[i]] != null && ks[i] !== "__proto__")
                        this[ks[i]] = p[ks[i]];
        };

        DepthBatch.prototype.notes = $util.emptyArray;
        DepthBatch.prototype.netfilter = $util.emptyArray;
        DepthBatch.prototype.seq = $util.Long ? $util.Long.fromBits(0,0,true) : 0;

        DepthBatch.encode = function (m, w, q) {
            if (!w)
                w = $Writer.create();
            if (q === $undefined)
                q = 0;
            if (q > $util.recursionLimit)
                throw $Error("max depth exceeded");
            if (m.notes != null && m.notes.length) {
                for (var i = 0; i < m.notes.length; ++i)
                    $root.hoptrace.HopNote.encode(m.notes[i], w.uint32(10).fork(), q + 1).ldelim();
            }
            if (m.netfilter != null && m.netfilter.length) {
                for (var i = 0; i < m.netfilter.length; ++i)
                    $root.hoptrace.NetfilterEvent.encode(m.netfilter[i], w.uint32(18).fork(), q + 1).ldelim();
            }
            if (m.seq != null && $Object.hasOwnProperty.call(m, "seq") && (typeof m.seq === "object" ? m.seq.low || m.seq.high : m.seq !== 0))
                w.uint32(24).uint64(m.seq);
            if (m.$unknowns != null && $Object.hasOwnProperty.call(m, "$unknowns"))
                for (var i = 0; i < m.$unknowns.length; ++i)
                    w.raw(m.$unknowns[i]);
            return w;
        };

        DepthBatch.decode = function (r, l, z, q, g) {
            if (!(r instanceof $Reader))
                r = $Reader.create(r);
            if (q === $undefined)
                q = 0;
            if (q > $Reader.recursionLimit)
                throw $Error("max depth exceeded");
            var c, m, v;
            if (l === $undefined)
                c = r.len;
            else {
                c = r.pos + l;
                if (c > r.len)
                    throw $RangeError("index out of range");
                l = r.len;
                r.len = c;
            }
            m = g || new $root.hoptrace.DepthBatch();
            while (r.pos < c) {
                var s = r.pos;
                var t = r.tag();
                if (t === z) {
                    z = $undefined;
                    break;
                }
                var u = t & 7;
                switch (t >>>= 3) {
                case 1: {
                        if (u !== 2)
                            break;
                        if (!(m.notes && m.notes.length))
                            m.notes = [];
                        m.notes.push($root.hoptrace.HopNote.decode(r, r.size(), $undefined, q + 1));
                        continue;
                    }
                case 2: {
                        if (u !== 2)
                            break;
                        if (!(m.netfilter && m.netfilter.length))
                            m.netfilter = [];
                        m.netfilter.push($root.hoptrace.NetfilterEvent.decode(r, r.size(), $undefined, q + 1));
                        continue;
                    }
                case 3: {
                        if (u !== 0)
                            break;
                        if (typeof (v = r.uint64()) === "object" ? v.low || v.high : v !== 0)
                            m.seq = v;
                        else
                            delete m.seq;
                        continue;
                    }
                }
                r.skipType(u, q, t);
                if (!r.discardUnknown) {
                    $util.makeProp(m, "$unknowns", false);
                    (m.$unknowns || (m.$unknowns = [])).push(r.raw(s, r.pos));
                }
            }
            if (l !== $undefined) {
                if (r.pos !== c)
                    throw $RangeError("index out of range");
                r.len = l;
            }
            if (z !== $undefined)
                throw $Error("missing end group");
            return m;
        };

        return DepthBatch;
    })();

    return hoptrace;
})();

export {
  $root as default
};
