/**
 * Layout measurements the browser tests make in the page itself (not by eye on a screenshot):
 * text cut off by its box, boxes running out of the window, topology nodes cut by the drawing's
 * edge or hidden under its legend.
 */
import type { Page } from 'playwright-core';

export const VIEWPORTS = [
  { width: 1280, height: 720 },
  { width: 1440, height: 900 },
  { width: 1920, height: 1080 },
] as const;

/**
 * Visible labelled elements (a data-testid, a title, an aria-label; buttons, table heads, status
 * items, callouts, the empty state's lines) whose text is wider than their box — scrollWidth >
 * clientWidth, what an ellipsis or a hidden overflow hides — or whose box runs out of the window.
 * Scrolling containers (overflow auto/scroll) are not cut: their content can be reached. Rows of
 * the packet list are checked where the issue saw cuts: the tuple's text (path chips are cut from
 * the start on purpose, their full name in the tooltip). Returns one line per offender.
 */
export async function clippedText(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const vw = document.documentElement.clientWidth;
    const sel = [
      '[data-testid]', '[title]', '[aria-label]', 'button', 'th', '.item', '.callout', '.panel-title', '.empty-state p',
      '.empty-state .cmd', '.tuple-text', '.notice', 'label',
    ].join(',');
    for (const el of document.querySelectorAll<HTMLElement>(sel)) {
      if (!(el instanceof HTMLElement)) continue;
      // Path chips (and the row cells holding them) give way by design: squeezed, a chip is cut
      // from the start and names its namespace in full in its tooltip.
      if (el.closest('.c-path') || el.matches('.prow, .prow > .c-path')) continue;
      // Text fields scroll their text under the caret: what is typed stays reachable.
      if (el.matches('input, textarea, select')) continue;
      // IPv6 tuples are longer than the column is wide at these sizes: they are cut, with their
      // full text in the cell's tooltip. IPv4 ones (the demo's) must fit whole.
      if (el.matches('.tuple-text') && /::|\[/.test(el.textContent ?? '')) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden') continue;
      const scrolls = style.overflowX === 'auto' || style.overflowX === 'scroll';
      const name = el.dataset.testid ?? (el.className && typeof el.className === 'string' ? `.${el.className.split(' ')[0]}` : el.tagName.toLowerCase());
      const text = (el.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 60);
      if (!scrolls && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) out.push(`${name} cut: ${el.scrollWidth} > ${el.clientWidth} px "${text}"`);
      if (r.right > vw + 1) out.push(`${name} runs out of the window: right ${Math.round(r.right)} > ${vw} "${text}"`);
    }
    return out;
  });
}

/**
 * Topology nodes (namespaces) cut by the drawing's edge or lying under its legend, and collapsed
 * namespaces whose summary line is wider than their box. `pathOnly`: with a packet open on a host
 * too big to read whole, the view zooms onto the packet's path (observed and expected): only
 * those namespaces must then be whole and clear of the legend.
 */
export async function topologyProblems(page: Page, pathOnly = false): Promise<string[]> {
  return page.evaluate((pathOnly) => {
    const out: string[] = [];
    const svg = document.querySelector<SVGSVGElement>('[data-testid="topology"] svg');
    if (!svg) return ['no topology drawing'];
    const box = svg.getBoundingClientRect();
    const legend = document.querySelector('[data-testid="topology-legend"]')?.getBoundingClientRect();
    const nodes = document.querySelectorAll<SVGGElement>(pathOnly
      ? '[data-testid="ns-node"].onpath, [data-testid="ns-node"].onexpected'
      : '[data-testid="ns-node"], [data-testid="ns-group"]');
    if (pathOnly && nodes.length === 0) return ['no namespace on the packet\'s path is drawn'];
    for (const g of nodes) {
      const r = g.querySelector('rect.ns-box')?.getBoundingClientRect();
      if (!r) continue;
      const name = g.getAttribute('data-name');
      if (r.top < box.top - 1 || r.left < box.left - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1) {
        out.push(`${name} cut by the drawing's edge (${Math.round(r.left)},${Math.round(r.top)}–${Math.round(r.right)},${Math.round(r.bottom)} in ${Math.round(box.left)},${Math.round(box.top)}–${Math.round(box.right)},${Math.round(box.bottom)})`);
      }
      if (legend && r.bottom > legend.top && r.top < legend.bottom && r.right > legend.left && r.left < legend.right) out.push(`${name} under the legend`);
      const sub = g.querySelector<SVGTextElement>('[data-testid="ns-summary"]');
      if (sub) {
        const s = sub.getBoundingClientRect();
        if (s.right > r.right + 0.5) out.push(`${name}: summary "${sub.textContent?.trim()}" runs out of its box`);
      }
    }
    return out;
  }, pathOnly);
}

/** Rate and p99 pills of the topology that overlap each other. */
export async function overlappingPills(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const pills = [...document.querySelectorAll<SVGGElement>('[data-testid="link-rate"], [data-testid="link-p99"]')]
      .map((g) => ({ text: g.textContent?.trim() ?? '', r: g.querySelector('rect')?.getBoundingClientRect(), t: g.querySelector('text')?.getBoundingClientRect() }));
    const out: string[] = [];
    for (const p of pills) {
      if (p.r && p.t && (p.t.left < p.r.left - 0.5 || p.t.right > p.r.right + 0.5)) out.push(`pill "${p.text}": text wider than its pill`);
    }
    for (let i = 0; i < pills.length; i++) {
      for (let j = i + 1; j < pills.length; j++) {
        const a = pills[i]?.r;
        const b = pills[j]?.r;
        if (a && b && a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) {
          out.push(`pills "${pills[i]?.text}" and "${pills[j]?.text}" overlap`);
        }
      }
    }
    return out;
  });
}
