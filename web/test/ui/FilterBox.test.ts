// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import FilterBox from '../../src/ui/FilterBox.vue';
import { FilterError, formatFilterError, parseFilter } from '../../../shared/filter/index.js';

function check(text: string) {
  try {
    parseFilter(text);
    return null;
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    return { message: err.message, offset: err.offset, length: err.length, formatted: formatFilterError(text, err) };
  }
}

describe('FilterBox', () => {
  it('should show the CLI\'s caret error under the box while the filter does not parse', async () => {
    const w = mount(FilterBox, { props: { applied: '', check } });
    await w.find('input').setValue('host foo and tcp');
    const err = w.find('[data-testid="filter-error"]');
    expect(err.exists()).toBe(true);
    expect(err.text()).toBe(formatFilterError('host foo and tcp', new FilterError('x', 5, 3)).split('\n')[0] + '\n' + err.text().split('\n')[1]);
    expect(err.text().split('\n')[1]).toMatch(/^ {5}\^\^\^ /);
    await w.find('input').trigger('keydown', { key: 'Enter' });
    expect(w.emitted('apply')).toBeUndefined();
  });

  it('should apply a good filter on Enter and put back the applied one on Escape', async () => {
    const w = mount(FilterBox, { props: { applied: 'icmp', check } });
    const input = w.find('input');
    await input.setValue('udp and port 53 ');
    await input.trigger('keydown', { key: 'Enter' });
    expect(w.emitted('apply')?.[0]).toEqual(['udp and port 53']);
    await input.setValue('tcp');
    await input.trigger('keydown', { key: 'Escape' });
    expect((input.element as HTMLInputElement).value).toBe('icmp');
  });
});
