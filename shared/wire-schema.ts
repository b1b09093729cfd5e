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
        },
        "NamespaceName": {
          "fields": {
            "netns": {
              "type": "uint32",
              "id": 1
            },
            "name": {
              "type": "string",
              "id": 2
            }
          }
        },
        "RecordingHeader": {
          "fields": {
            "host": {
              "type": "string",
              "id": 1
            },
            "kernel": {
              "type": "string",
              "id": 2
            },
            "bpftrace_version": {
              "type": "string",
              "id": 3
            },
            "probes": {
              "rule": "repeated",
              "type": "string",
              "id": 4
            },
            "filter": {
              "type": "string",
              "id": 5
            },
            "start_wall_ns": {
              "type": "uint64",
              "id": 6
            },
            "start_mono_ns": {
              "type": "uint64",
              "id": 7
            },
            "drop_reasons": {
              "keyType": "uint32",
              "type": "string",
              "id": 8
            },
            "recorder": {
              "type": "string",
              "id": 9
            }
          }
        },
        "TopologyRecord": {
          "fields": {
            "t": {
              "type": "uint64",
              "id": 1
            },
            "snapshot": {
              "type": "bool",
              "id": 2
            },
            "namespaces": {
              "rule": "repeated",
              "type": "NamespaceName",
              "id": 3
            },
            "model_json": {
              "type": "string",
              "id": 4
            },
            "prev_offset": {
              "type": "uint64",
              "id": 5
            },
            "removed": {
              "rule": "repeated",
              "type": "uint32",
              "id": 6
            }
          }
        },
        "LostRecord": {
          "fields": {
            "t": {
              "type": "uint64",
              "id": 1
            },
            "count": {
              "type": "uint64",
              "id": 2
            }
          }
        },
        "IndexRecord": {
          "fields": {
            "max_t_before": {
              "type": "uint64",
              "id": 1
            },
            "events_before": {
              "type": "uint64",
              "id": 2
            },
            "lost_before": {
              "type": "uint64",
              "id": 3
            },
            "topology_offset": {
              "type": "uint64",
              "id": 4
            },
            "offset": {
              "type": "uint64",
              "id": 5
            }
          }
        },
        "EndRecord": {
          "fields": {
            "t": {
              "type": "uint64",
              "id": 1
            },
            "wall_ns": {
              "type": "uint64",
              "id": 2
            },
            "events": {
              "type": "uint64",
              "id": 3
            },
            "lost": {
              "type": "uint64",
              "id": 4
            },
            "packets": {
              "type": "uint64",
              "id": 5
            },
            "reason": {
              "type": "string",
              "id": 6
            }
          }
        },
        "ClockRecord": {
          "fields": {
            "t": {
              "type": "uint64",
              "id": 1
            }
          }
        },
        "HopNote": {
          "fields": {
            "kind": {
              "type": "string",
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
            "num": {
              "keyType": "string",
              "type": "sint64",
              "id": 6
            },
            "text": {
              "keyType": "string",
              "type": "string",
              "id": 7
            }
          }
        },
        "NetfilterEvent": {
          "fields": {
            "ns": {
              "type": "string",
              "id": 1
            },
            "netns": {
              "type": "uint32",
              "id": 2
            },
            "t": {
              "type": "uint64",
              "id": 3
            },
            "trace_id": {
              "type": "string",
              "id": 4
            },
            "family": {
              "type": "string",
              "id": 5
            },
            "table": {
              "type": "string",
              "id": 6
            },
            "chain": {
              "type": "string",
              "id": 7
            },
            "hook": {
              "type": "string",
              "id": 8
            },
            "type": {
              "type": "string",
              "id": 9
            },
            "rule": {
              "type": "string",
              "id": 10
            },
            "handle": {
              "type": "int64",
              "id": 11
            },
            "verdict": {
              "type": "string",
              "id": 12
            },
            "nat": {
              "type": "string",
              "id": 13
            },
            "iif": {
              "type": "string",
              "id": 14
            },
            "oif": {
              "type": "string",
              "id": 15
            },
            "pkt_family": {
              "type": "uint32",
              "id": 16
            },
            "proto": {
              "type": "uint32",
              "id": 17
            },
            "src": {
              "type": "string",
              "id": 18
            },
            "dst": {
              "type": "string",
              "id": 19
            },
            "sport": {
              "type": "uint32",
              "id": 20
            },
            "dport": {
              "type": "uint32",
              "id": 21
            },
            "ip_id": {
              "type": "uint32",
              "id": 22
            },
            "len": {
              "type": "uint32",
              "id": 23
            },
            "tcp_seq": {
              "type": "uint32",
              "id": 24
            },
            "icmp_id": {
              "type": "uint32",
              "id": 25
            }
          }
        },
        "DepthBatch": {
          "fields": {
            "notes": {
              "rule": "repeated",
              "type": "HopNote",
              "id": 1
            },
            "netfilter": {
              "rule": "repeated",
              "type": "NetfilterEvent",
              "id": 2
            },
            "seq": {
              "type": "uint64",
              "id": 3
            }
          }
        }
      }
    }
  }
} as const;
