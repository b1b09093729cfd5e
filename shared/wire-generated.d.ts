// Generated from shared/wire.proto by scripts/gen-wire.ts — do not edit; run `npm run gen:wire`.
import * as $protobuf from "protobufjs/minimal.js";
import Long = require("long");

/** Namespace hoptrace. */
export namespace hoptrace {

    /**
     * Properties of a HopEvent.
     * @deprecated Use hoptrace.HopEvent.$Properties instead.
     */
    interface IHopEvent extends hoptrace.HopEvent.$Properties {
    }

    /** Represents a HopEvent. */
    class HopEvent {

        /**
         * Constructs a new HopEvent.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.HopEvent.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** HopEvent kind. */
        kind: hoptrace.HopEvent.Kind;

        /** HopEvent t. */
        t: (number|Long);

        /** HopEvent cpu. */
        cpu: number;

        /** HopEvent skb. */
        skb: string;

        /** HopEvent netns. */
        netns: number;

        /** HopEvent ifindex. */
        ifindex: number;

        /** HopEvent ifname. */
        ifname: string;

        /** HopEvent family. */
        family: number;

        /** HopEvent proto. */
        proto: number;

        /** HopEvent len. */
        len: number;

        /** HopEvent ip_id. */
        ip_id: number;

        /** HopEvent src. */
        src: Uint8Array;

        /** HopEvent dst. */
        dst: Uint8Array;

        /** HopEvent sport. */
        sport: number;

        /** HopEvent dport. */
        dport: number;

        /** HopEvent icmp_type. */
        icmp_type: number;

        /** HopEvent icmp_id. */
        icmp_id: number;

        /** HopEvent tcp_flags. */
        tcp_flags: number;

        /** HopEvent tcp_seq. */
        tcp_seq: number;

        /** HopEvent reason. */
        reason: number;

        /** HopEvent head. */
        head: Uint8Array;

        /** HopEvent outer. */
        outer?: (hoptrace.HopOuter.$Properties|null);

        /** HopEvent sent. */
        sent?: (hoptrace.HopSent.$Properties|null);

        /** HopEvent node. */
        node: string;

        /** HopEvent frag. */
        frag: number;

        /**
         * Encodes the specified HopEvent message. Does not implicitly {@link hoptrace.HopEvent.verify|verify} messages.
         * @param message HopEvent message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.HopEvent.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a HopEvent message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.HopEvent & hoptrace.HopEvent.$Shape} HopEvent
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.HopEvent & hoptrace.HopEvent.$Shape;
    }

    namespace HopEvent {

        /** Properties of a HopEvent. */
        interface $Properties {

            /** HopEvent kind */
            kind?: (hoptrace.HopEvent.Kind|null);

            /** HopEvent t */
            t?: (number|Long|null);

            /** HopEvent cpu */
            cpu?: (number|null);

            /** HopEvent skb */
            skb?: (string|null);

            /** HopEvent netns */
            netns?: (number|null);

            /** HopEvent ifindex */
            ifindex?: (number|null);

            /** HopEvent ifname */
            ifname?: (string|null);

            /** HopEvent family */
            family?: (number|null);

            /** HopEvent proto */
            proto?: (number|null);

            /** HopEvent len */
            len?: (number|null);

            /** HopEvent ip_id */
            ip_id?: (number|null);

            /** HopEvent src */
            src?: (Uint8Array|null);

            /** HopEvent dst */
            dst?: (Uint8Array|null);

            /** HopEvent sport */
            sport?: (number|null);

            /** HopEvent dport */
            dport?: (number|null);

            /** HopEvent icmp_type */
            icmp_type?: (number|null);

            /** HopEvent icmp_id */
            icmp_id?: (number|null);

            /** HopEvent tcp_flags */
            tcp_flags?: (number|null);

            /** HopEvent tcp_seq */
            tcp_seq?: (number|null);

            /** HopEvent reason */
            reason?: (number|null);

            /** HopEvent head */
            head?: (Uint8Array|null);

            /** HopEvent outer */
            outer?: (hoptrace.HopOuter.$Properties|null);

            /** HopEvent sent */
            sent?: (hoptrace.HopSent.$Properties|null);

            /** HopEvent node */
            node?: (string|null);

            /** HopEvent frag */
            frag?: (number|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a HopEvent. */
        type $Shape = hoptrace.HopEvent.$Properties;

        /** Kind enum. */
        enum Kind {

            /** XMIT value */
            XMIT = 0,

            /** RX value */
            RX = 1,

            /** RECV value */
            RECV = 2,

            /** DROP value */
            DROP = 3,

            /** CONSUME value */
            CONSUME = 4
        }
    }

    /**
     * Properties of a HopSent.
     * @deprecated Use hoptrace.HopSent.$Properties instead.
     */
    interface IHopSent extends hoptrace.HopSent.$Properties {
    }

    /** Represents a HopSent. */
    class HopSent {

        /**
         * Constructs a new HopSent.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.HopSent.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** HopSent src. */
        src: Uint8Array;

        /** HopSent dst. */
        dst: Uint8Array;

        /** HopSent sport. */
        sport: number;

        /** HopSent dport. */
        dport: number;

        /**
         * Encodes the specified HopSent message. Does not implicitly {@link hoptrace.HopSent.verify|verify} messages.
         * @param message HopSent message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.HopSent.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a HopSent message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.HopSent & hoptrace.HopSent.$Shape} HopSent
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.HopSent & hoptrace.HopSent.$Shape;
    }

    namespace HopSent {

        /** Properties of a HopSent. */
        interface $Properties {

            /** HopSent src */
            src?: (Uint8Array|null);

            /** HopSent dst */
            dst?: (Uint8Array|null);

            /** HopSent sport */
            sport?: (number|null);

            /** HopSent dport */
            dport?: (number|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a HopSent. */
        type $Shape = hoptrace.HopSent.$Properties;
    }

    /**
     * Properties of a HopOuter.
     * @deprecated Use hoptrace.HopOuter.$Properties instead.
     */
    interface IHopOuter extends hoptrace.HopOuter.$Properties {
    }

    /** Represents a HopOuter. */
    class HopOuter {

        /**
         * Constructs a new HopOuter.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.HopOuter.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** HopOuter family. */
        family: number;

        /** HopOuter proto. */
        proto: number;

        /** HopOuter src. */
        src: Uint8Array;

        /** HopOuter dst. */
        dst: Uint8Array;

        /** HopOuter sport. */
        sport: number;

        /** HopOuter dport. */
        dport: number;

        /** HopOuter vni. */
        vni: number;

        /** HopOuter inner_read. */
        inner_read: boolean;

        /** HopOuter ip_id. */
        ip_id: number;

        /** HopOuter frag. */
        frag: number;

        /**
         * Encodes the specified HopOuter message. Does not implicitly {@link hoptrace.HopOuter.verify|verify} messages.
         * @param message HopOuter message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.HopOuter.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a HopOuter message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.HopOuter & hoptrace.HopOuter.$Shape} HopOuter
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.HopOuter & hoptrace.HopOuter.$Shape;
    }

    namespace HopOuter {

        /** Properties of a HopOuter. */
        interface $Properties {

            /** HopOuter family */
            family?: (number|null);

            /** HopOuter proto */
            proto?: (number|null);

            /** HopOuter src */
            src?: (Uint8Array|null);

            /** HopOuter dst */
            dst?: (Uint8Array|null);

            /** HopOuter sport */
            sport?: (number|null);

            /** HopOuter dport */
            dport?: (number|null);

            /** HopOuter vni */
            vni?: (number|null);

            /** HopOuter inner_read */
            inner_read?: (boolean|null);

            /** HopOuter ip_id */
            ip_id?: (number|null);

            /** HopOuter frag */
            frag?: (number|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a HopOuter. */
        type $Shape = hoptrace.HopOuter.$Properties;
    }

    /**
     * Properties of a HopBatch.
     * @deprecated Use hoptrace.HopBatch.$Properties instead.
     */
    interface IHopBatch extends hoptrace.HopBatch.$Properties {
    }

    /** Represents a HopBatch. */
    class HopBatch {

        /**
         * Constructs a new HopBatch.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.HopBatch.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** HopBatch events. */
        events: hoptrace.HopEvent.$Properties[];

        /** HopBatch seq. */
        seq: (number|Long);

        /** HopBatch lost_kernel. */
        lost_kernel: number;

        /** HopBatch clock. */
        clock: (number|Long);

        /**
         * Encodes the specified HopBatch message. Does not implicitly {@link hoptrace.HopBatch.verify|verify} messages.
         * @param message HopBatch message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.HopBatch.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a HopBatch message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.HopBatch & hoptrace.HopBatch.$Shape} HopBatch
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.HopBatch & hoptrace.HopBatch.$Shape;
    }

    namespace HopBatch {

        /** Properties of a HopBatch. */
        interface $Properties {

            /** HopBatch events */
            events?: (hoptrace.HopEvent.$Properties[]|null);

            /** HopBatch seq */
            seq?: (number|Long|null);

            /** HopBatch lost_kernel */
            lost_kernel?: (number|null);

            /** HopBatch clock */
            clock?: (number|Long|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a HopBatch. */
        type $Shape = hoptrace.HopBatch.$Properties;
    }

    /**
     * Properties of a NamespaceName.
     * @deprecated Use hoptrace.NamespaceName.$Properties instead.
     */
    interface INamespaceName extends hoptrace.NamespaceName.$Properties {
    }

    /** Represents a NamespaceName. */
    class NamespaceName {

        /**
         * Constructs a new NamespaceName.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.NamespaceName.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** NamespaceName netns. */
        netns: number;

        /** NamespaceName name. */
        name: string;

        /**
         * Encodes the specified NamespaceName message. Does not implicitly {@link hoptrace.NamespaceName.verify|verify} messages.
         * @param message NamespaceName message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.NamespaceName.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a NamespaceName message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.NamespaceName & hoptrace.NamespaceName.$Shape} NamespaceName
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.NamespaceName & hoptrace.NamespaceName.$Shape;
    }

    namespace NamespaceName {

        /** Properties of a NamespaceName. */
        interface $Properties {

            /** NamespaceName netns */
            netns?: (number|null);

            /** NamespaceName name */
            name?: (string|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a NamespaceName. */
        type $Shape = hoptrace.NamespaceName.$Properties;
    }

    /**
     * Properties of a RecordingHeader.
     * @deprecated Use hoptrace.RecordingHeader.$Properties instead.
     */
    interface IRecordingHeader extends hoptrace.RecordingHeader.$Properties {
    }

    /** Represents a RecordingHeader. */
    class RecordingHeader {

        /**
         * Constructs a new RecordingHeader.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.RecordingHeader.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** RecordingHeader host. */
        host: string;

        /** RecordingHeader kernel. */
        kernel: string;

        /** RecordingHeader bpftrace_version. */
        bpftrace_version: string;

        /** RecordingHeader probes. */
        probes: string[];

        /** RecordingHeader filter. */
        filter: string;

        /** RecordingHeader start_wall_ns. */
        start_wall_ns: (number|Long);

        /** RecordingHeader start_mono_ns. */
        start_mono_ns: (number|Long);

        /** RecordingHeader drop_reasons. */
        drop_reasons: { [k: string]: string };

        /** RecordingHeader recorder. */
        recorder: string;

        /** RecordingHeader netfilter. */
        netfilter: boolean;

        /** RecordingHeader notes. */
        notes: boolean;

        /** RecordingHeader sample_rate. */
        sample_rate: number;

        /** RecordingHeader probe_tier. */
        probe_tier: string;

        /**
         * Encodes the specified RecordingHeader message. Does not implicitly {@link hoptrace.RecordingHeader.verify|verify} messages.
         * @param message RecordingHeader message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.RecordingHeader.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a RecordingHeader message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.RecordingHeader & hoptrace.RecordingHeader.$Shape} RecordingHeader
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.RecordingHeader & hoptrace.RecordingHeader.$Shape;
    }

    namespace RecordingHeader {

        /** Properties of a RecordingHeader. */
        interface $Properties {

            /** RecordingHeader host */
            host?: (string|null);

            /** RecordingHeader kernel */
            kernel?: (string|null);

            /** RecordingHeader bpftrace_version */
            bpftrace_version?: (string|null);

            /** RecordingHeader probes */
            probes?: (string[]|null);

            /** RecordingHeader filter */
            filter?: (string|null);

            /** RecordingHeader start_wall_ns */
            start_wall_ns?: (number|Long|null);

            /** RecordingHeader start_mono_ns */
            start_mono_ns?: (number|Long|null);

            /** RecordingHeader drop_reasons */
            drop_reasons?: ({ [k: string]: string }|null);

            /** RecordingHeader recorder */
            recorder?: (string|null);

            /** RecordingHeader netfilter */
            netfilter?: (boolean|null);

            /** RecordingHeader notes */
            notes?: (boolean|null);

            /** RecordingHeader sample_rate */
            sample_rate?: (number|null);

            /** RecordingHeader probe_tier */
            probe_tier?: (string|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a RecordingHeader. */
        type $Shape = hoptrace.RecordingHeader.$Properties;
    }

    /**
     * Properties of a TopologyRecord.
     * @deprecated Use hoptrace.TopologyRecord.$Properties instead.
     */
    interface ITopologyRecord extends hoptrace.TopologyRecord.$Properties {
    }

    /** Represents a TopologyRecord. */
    class TopologyRecord {

        /**
         * Constructs a new TopologyRecord.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.TopologyRecord.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** TopologyRecord t. */
        t: (number|Long);

        /** TopologyRecord snapshot. */
        snapshot: boolean;

        /** TopologyRecord namespaces. */
        namespaces: hoptrace.NamespaceName.$Properties[];

        /** TopologyRecord model_json. */
        model_json: string;

        /** TopologyRecord prev_offset. */
        prev_offset: (number|Long);

        /** TopologyRecord removed. */
        removed: number[];

        /**
         * Encodes the specified TopologyRecord message. Does not implicitly {@link hoptrace.TopologyRecord.verify|verify} messages.
         * @param message TopologyRecord message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.TopologyRecord.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a TopologyRecord message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.TopologyRecord & hoptrace.TopologyRecord.$Shape} TopologyRecord
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.TopologyRecord & hoptrace.TopologyRecord.$Shape;
    }

    namespace TopologyRecord {

        /** Properties of a TopologyRecord. */
        interface $Properties {

            /** TopologyRecord t */
            t?: (number|Long|null);

            /** TopologyRecord snapshot */
            snapshot?: (boolean|null);

            /** TopologyRecord namespaces */
            namespaces?: (hoptrace.NamespaceName.$Properties[]|null);

            /** TopologyRecord model_json */
            model_json?: (string|null);

            /** TopologyRecord prev_offset */
            prev_offset?: (number|Long|null);

            /** TopologyRecord removed */
            removed?: (number[]|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a TopologyRecord. */
        type $Shape = hoptrace.TopologyRecord.$Properties;
    }

    /**
     * Properties of a LostRecord.
     * @deprecated Use hoptrace.LostRecord.$Properties instead.
     */
    interface ILostRecord extends hoptrace.LostRecord.$Properties {
    }

    /** Represents a LostRecord. */
    class LostRecord {

        /**
         * Constructs a new LostRecord.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.LostRecord.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** LostRecord t. */
        t: (number|Long);

        /** LostRecord count. */
        count: (number|Long);

        /**
         * Encodes the specified LostRecord message. Does not implicitly {@link hoptrace.LostRecord.verify|verify} messages.
         * @param message LostRecord message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.LostRecord.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a LostRecord message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.LostRecord & hoptrace.LostRecord.$Shape} LostRecord
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.LostRecord & hoptrace.LostRecord.$Shape;
    }

    namespace LostRecord {

        /** Properties of a LostRecord. */
        interface $Properties {

            /** LostRecord t */
            t?: (number|Long|null);

            /** LostRecord count */
            count?: (number|Long|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a LostRecord. */
        type $Shape = hoptrace.LostRecord.$Properties;
    }

    /**
     * Properties of an IndexRecord.
     * @deprecated Use hoptrace.IndexRecord.$Properties instead.
     */
    interface IIndexRecord extends hoptrace.IndexRecord.$Properties {
    }

    /** Represents an IndexRecord. */
    class IndexRecord {

        /**
         * Constructs a new IndexRecord.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.IndexRecord.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** IndexRecord max_t_before. */
        max_t_before: (number|Long);

        /** IndexRecord events_before. */
        events_before: (number|Long);

        /** IndexRecord lost_before. */
        lost_before: (number|Long);

        /** IndexRecord topology_offset. */
        topology_offset: (number|Long);

        /** IndexRecord offset. */
        offset: (number|Long);

        /**
         * Encodes the specified IndexRecord message. Does not implicitly {@link hoptrace.IndexRecord.verify|verify} messages.
         * @param message IndexRecord message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.IndexRecord.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes an IndexRecord message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.IndexRecord & hoptrace.IndexRecord.$Shape} IndexRecord
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.IndexRecord & hoptrace.IndexRecord.$Shape;
    }

    namespace IndexRecord {

        /** Properties of an IndexRecord. */
        interface $Properties {

            /** IndexRecord max_t_before */
            max_t_before?: (number|Long|null);

            /** IndexRecord events_before */
            events_before?: (number|Long|null);

            /** IndexRecord lost_before */
            lost_before?: (number|Long|null);

            /** IndexRecord topology_offset */
            topology_offset?: (number|Long|null);

            /** IndexRecord offset */
            offset?: (number|Long|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of an IndexRecord. */
        type $Shape = hoptrace.IndexRecord.$Properties;
    }

    /**
     * Properties of an EndRecord.
     * @deprecated Use hoptrace.EndRecord.$Properties instead.
     */
    interface IEndRecord extends hoptrace.EndRecord.$Properties {
    }

    /** Represents an EndRecord. */
    class EndRecord {

        /**
         * Constructs a new EndRecord.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.EndRecord.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** EndRecord t. */
        t: (number|Long);

        /** EndRecord wall_ns. */
        wall_ns: (number|Long);

        /** EndRecord events. */
        events: (number|Long);

        /** EndRecord lost. */
        lost: (number|Long);

        /** EndRecord packets. */
        packets: (number|Long);

        /** EndRecord reason. */
        reason: string;

        /**
         * Encodes the specified EndRecord message. Does not implicitly {@link hoptrace.EndRecord.verify|verify} messages.
         * @param message EndRecord message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.EndRecord.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes an EndRecord message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.EndRecord & hoptrace.EndRecord.$Shape} EndRecord
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.EndRecord & hoptrace.EndRecord.$Shape;
    }

    namespace EndRecord {

        /** Properties of an EndRecord. */
        interface $Properties {

            /** EndRecord t */
            t?: (number|Long|null);

            /** EndRecord wall_ns */
            wall_ns?: (number|Long|null);

            /** EndRecord events */
            events?: (number|Long|null);

            /** EndRecord lost */
            lost?: (number|Long|null);

            /** EndRecord packets */
            packets?: (number|Long|null);

            /** EndRecord reason */
            reason?: (string|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of an EndRecord. */
        type $Shape = hoptrace.EndRecord.$Properties;
    }

    /**
     * Properties of a ClockRecord.
     * @deprecated Use hoptrace.ClockRecord.$Properties instead.
     */
    interface IClockRecord extends hoptrace.ClockRecord.$Properties {
    }

    /** Represents a ClockRecord. */
    class ClockRecord {

        /**
         * Constructs a new ClockRecord.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.ClockRecord.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** ClockRecord t. */
        t: (number|Long);

        /**
         * Encodes the specified ClockRecord message. Does not implicitly {@link hoptrace.ClockRecord.verify|verify} messages.
         * @param message ClockRecord message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.ClockRecord.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a ClockRecord message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.ClockRecord & hoptrace.ClockRecord.$Shape} ClockRecord
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.ClockRecord & hoptrace.ClockRecord.$Shape;
    }

    namespace ClockRecord {

        /** Properties of a ClockRecord. */
        interface $Properties {

            /** ClockRecord t */
            t?: (number|Long|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a ClockRecord. */
        type $Shape = hoptrace.ClockRecord.$Properties;
    }

    /**
     * Properties of a HopNote.
     * @deprecated Use hoptrace.HopNote.$Properties instead.
     */
    interface IHopNote extends hoptrace.HopNote.$Properties {
    }

    /** Represents a HopNote. */
    class HopNote {

        /**
         * Constructs a new HopNote.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.HopNote.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** HopNote kind. */
        kind: string;

        /** HopNote t. */
        t: (number|Long);

        /** HopNote cpu. */
        cpu: number;

        /** HopNote skb. */
        skb: string;

        /** HopNote netns. */
        netns: number;

        /** HopNote num. */
        num: { [k: string]: (number|Long) };

        /** HopNote text. */
        text: { [k: string]: string };

        /** HopNote node. */
        node: string;

        /**
         * Encodes the specified HopNote message. Does not implicitly {@link hoptrace.HopNote.verify|verify} messages.
         * @param message HopNote message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.HopNote.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a HopNote message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.HopNote & hoptrace.HopNote.$Shape} HopNote
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.HopNote & hoptrace.HopNote.$Shape;
    }

    namespace HopNote {

        /** Properties of a HopNote. */
        interface $Properties {

            /** HopNote kind */
            kind?: (string|null);

            /** HopNote t */
            t?: (number|Long|null);

            /** HopNote cpu */
            cpu?: (number|null);

            /** HopNote skb */
            skb?: (string|null);

            /** HopNote netns */
            netns?: (number|null);

            /** HopNote num */
            num?: ({ [k: string]: (number|Long) }|null);

            /** HopNote text */
            text?: ({ [k: string]: string }|null);

            /** HopNote node */
            node?: (string|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a HopNote. */
        type $Shape = hoptrace.HopNote.$Properties;
    }

    /**
     * Properties of a NetfilterEvent.
     * @deprecated Use hoptrace.NetfilterEvent.$Properties instead.
     */
    interface INetfilterEvent extends hoptrace.NetfilterEvent.$Properties {
    }

    /** Represents a NetfilterEvent. */
    class NetfilterEvent {

        /**
         * Constructs a new NetfilterEvent.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.NetfilterEvent.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** NetfilterEvent ns. */
        ns: string;

        /** NetfilterEvent netns. */
        netns: number;

        /** NetfilterEvent t. */
        t: (number|Long);

        /** NetfilterEvent trace_id. */
        trace_id: string;

        /** NetfilterEvent family. */
        family: string;

        /** NetfilterEvent table. */
        table: string;

        /** NetfilterEvent chain. */
        chain: string;

        /** NetfilterEvent hook. */
        hook: string;

        /** NetfilterEvent type. */
        type: string;

        /** NetfilterEvent rule. */
        rule: string;

        /** NetfilterEvent handle. */
        handle: (number|Long);

        /** NetfilterEvent verdict. */
        verdict: string;

        /** NetfilterEvent nat. */
        nat: string;

        /** NetfilterEvent iif. */
        iif: string;

        /** NetfilterEvent oif. */
        oif: string;

        /** NetfilterEvent pkt_family. */
        pkt_family: number;

        /** NetfilterEvent proto. */
        proto: number;

        /** NetfilterEvent src. */
        src: string;

        /** NetfilterEvent dst. */
        dst: string;

        /** NetfilterEvent sport. */
        sport: number;

        /** NetfilterEvent dport. */
        dport: number;

        /** NetfilterEvent ip_id. */
        ip_id: number;

        /** NetfilterEvent len. */
        len: number;

        /** NetfilterEvent tcp_seq. */
        tcp_seq: number;

        /** NetfilterEvent icmp_id. */
        icmp_id: number;

        /** NetfilterEvent node. */
        node: string;

        /**
         * Encodes the specified NetfilterEvent message. Does not implicitly {@link hoptrace.NetfilterEvent.verify|verify} messages.
         * @param message NetfilterEvent message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.NetfilterEvent.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a NetfilterEvent message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.NetfilterEvent & hoptrace.NetfilterEvent.$Shape} NetfilterEvent
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.NetfilterEvent & hoptrace.NetfilterEvent.$Shape;
    }

    namespace NetfilterEvent {

        /** Properties of a NetfilterEvent. */
        interface $Properties {

            /** NetfilterEvent ns */
            ns?: (string|null);

            /** NetfilterEvent netns */
            netns?: (number|null);

            /** NetfilterEvent t */
            t?: (number|Long|null);

            /** NetfilterEvent trace_id */
            trace_id?: (string|null);

            /** NetfilterEvent family */
            family?: (string|null);

            /** NetfilterEvent table */
            table?: (string|null);

            /** NetfilterEvent chain */
            chain?: (string|null);

            /** NetfilterEvent hook */
            hook?: (string|null);

            /** NetfilterEvent type */
            type?: (string|null);

            /** NetfilterEvent rule */
            rule?: (string|null);

            /** NetfilterEvent handle */
            handle?: (number|Long|null);

            /** NetfilterEvent verdict */
            verdict?: (string|null);

            /** NetfilterEvent nat */
            nat?: (string|null);

            /** NetfilterEvent iif */
            iif?: (string|null);

            /** NetfilterEvent oif */
            oif?: (string|null);

            /** NetfilterEvent pkt_family */
            pkt_family?: (number|null);

            /** NetfilterEvent proto */
            proto?: (number|null);

            /** NetfilterEvent src */
            src?: (string|null);

            /** NetfilterEvent dst */
            dst?: (string|null);

            /** NetfilterEvent sport */
            sport?: (number|null);

            /** NetfilterEvent dport */
            dport?: (number|null);

            /** NetfilterEvent ip_id */
            ip_id?: (number|null);

            /** NetfilterEvent len */
            len?: (number|null);

            /** NetfilterEvent tcp_seq */
            tcp_seq?: (number|null);

            /** NetfilterEvent icmp_id */
            icmp_id?: (number|null);

            /** NetfilterEvent node */
            node?: (string|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a NetfilterEvent. */
        type $Shape = hoptrace.NetfilterEvent.$Properties;
    }

    /**
     * Properties of a DepthBatch.
     * @deprecated Use hoptrace.DepthBatch.$Properties instead.
     */
    interface IDepthBatch extends hoptrace.DepthBatch.$Properties {
    }

    /** Represents a DepthBatch. */
    class DepthBatch {

        /**
         * Constructs a new DepthBatch.
         * @param [properties] Properties to set
         */
        constructor(properties?: hoptrace.DepthBatch.$Properties);

        /** Unknown fields preserved while decoding when enabled */
        $unknowns?: Uint8Array[];

        /** DepthBatch notes. */
        notes: hoptrace.HopNote.$Properties[];

        /** DepthBatch netfilter. */
        netfilter: hoptrace.NetfilterEvent.$Properties[];

        /** DepthBatch seq. */
        seq: (number|Long);

        /**
         * Encodes the specified DepthBatch message. Does not implicitly {@link hoptrace.DepthBatch.verify|verify} messages.
         * @param message DepthBatch message or plain object to encode
         * @param [writer] Writer to encode to
         * @returns Writer
         */
        static encode(message: hoptrace.DepthBatch.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

        /**
         * Decodes a DepthBatch message from the specified reader or buffer.
         * @param reader Reader or buffer to decode from
         * @param [length] Message length if known beforehand
         * @returns {hoptrace.DepthBatch & hoptrace.DepthBatch.$Shape} DepthBatch
         * @throws {Error} If the payload is not a reader or valid buffer
         * @throws {$protobuf.util.ProtocolError} If required fields are missing
         */
        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): hoptrace.DepthBatch & hoptrace.DepthBatch.$Shape;
    }

    namespace DepthBatch {

        /** Properties of a DepthBatch. */
        interface $Properties {

            /** DepthBatch notes */
            notes?: (hoptrace.HopNote.$Properties[]|null);

            /** DepthBatch netfilter */
            netfilter?: (hoptrace.NetfilterEvent.$Properties[]|null);

            /** DepthBatch seq */
            seq?: (number|Long|null);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];
        }

        /** Shape of a DepthBatch. */
        type $Shape = hoptrace.DepthBatch.$Properties;
    }
}
