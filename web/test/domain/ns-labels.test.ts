import { describe, expect, it } from 'vitest';
import { shortNsLabels } from '../../src/domain/ns-labels.js';

describe('shortNsLabels', () => {
  it('should drop the prefix namespaces share, so path chips tell them apart', () => {
    const l = shortNsLabels(['htdemo-node', 'htdemo-pod1', 'htdemo-pod2', 'htdemo-ext', 'host']);
    expect([...l.values()]).toEqual(['node', 'pod1', 'pod2', 'ext', 'host']);
  });

  it('should keep as much of a name as tells it from every other namespace', () => {
    const l = shortNsLabels(['ht-a1b2c3-node', 'ht-a1b2c3-pod1', 'ht-d4e5f6-node', 'node0-pod1', 'node', 'pod-1', 'pod-2']);
    expect(l.get('ht-a1b2c3-node')).toBe('a1b2c3-node');
    expect(l.get('ht-d4e5f6-node')).toBe('d4e5f6-node');
    // "pod1" ends two names.
    expect(l.get('ht-a1b2c3-pod1')).toBe('a1b2c3-pod1');
    expect(l.get('node0-pod1')).toBe('node0-pod1');
    // A whole name that ends others stays whole; an ending of digits alone says too little.
    expect(l.get('node')).toBe('node');
    expect(l.get('pod-2')).toBe('pod-2');
    // Every label is different.
    expect(new Set(l.values()).size).toBe(l.size);
  });
});
