/**
 * A uPlot chart's life in a component, as LatencyChart and Sparkline both need it: built on mount
 * into `host` (not at all without a 2D canvas, as in a test DOM: the numbers beside the chart still
 * tell), fed `data()` again whenever `source` changes, destroyed on unmount.
 */
import { onBeforeUnmount, onMounted, watch, type Ref, type WatchSource } from 'vue';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export function useUplot(host: Ref<HTMLElement | null>, options: () => uPlot.Options, data: () => uPlot.AlignedData, source: WatchSource): void {
  let plot: uPlot | null = null;
  onMounted(() => {
    if (!host.value || !document.createElement('canvas').getContext('2d')) return;
    try {
      plot = new uPlot(options(), data(), host.value);
    } catch {
      plot = null;
    }
  });
  watch(source, () => plot?.setData(data()));
  onBeforeUnmount(() => plot?.destroy());
}
