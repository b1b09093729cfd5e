// Generated from shared/wire.proto by scripts/gen-wire.ts — do not edit; run `npm run gen:wire`.
export const WIRE_SCHEMA = {
  "nested": {
    "hoptrace": {
      "nested": {
        "HopEvent": {
          "fields": {
            "kind": {
              "type": "Kind",
              "id": 1
            },
            "t": {
              "type": "uint64",
              "id": 2
            },
            "cpu": {
              "type": "uint32",
              "id": 3
            },
            "skb": {
              "type": "string",
              "id": 4
            },
            "netns": {
              "type": "uint32",
              "id": 5
            },
            "ifindex": {
              "type": "uint32",
              "id": 6
            },
            "ifname": {
              "type": "string",
              "id": 7
            },
            "family": {
              "type": "uint32",
              "id": 8
            },
            "proto": {
              "type": "uint32",
              "id": 9
            },
            "len": {
              "type": "uint32",
              "id": 10
            },
            "ip_id": {
              "type": "uint32",
              "id": 11
            },
            "src": {
              "type": "bytes",
              "id": 12
            },
            "dst": {
              "type": "bytes",
              "id": 13
            },
            "sport": {
              "type": "uint32",
              "id": 14
            },
            "dport": {
              "type": "uint32",
              "id": 15
            },
            "icmp_type": {
              "type": "uint32",
              "id": 16
            },
            "icmp_id": {
              "type": "uint32",
              "id": 17
            },
            "tcp_flags": {
              "type": "uint32",
              "id": 18
            },
            "tcp_seq": {
              "type": "uint32",
              "id": 19
            },
            "reason": {
              "type": "uint32",
              "id": 20
            }
          },
          "nested": {
            "Kind": {
              "values": {
                "XMIT": 0,
                "RX": 1,
                "RECV": 2,
                "DROP": 3,
                "CONSUME": 4
              }
            }
          }
        },
        "HopBatch": {
          "fields": {
            "events": {
              "rule": "repeated",
              "type": "HopEvent",
              "id": 1
            },
            "seq": {
              "type": "uint64",
              "id": 2
            },
            "lost_kernel": {
              "type": "uint32",
              "id": 3
            }
          }
        }
      }
    }
  }
} as const;
