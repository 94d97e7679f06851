// uPlot charts (the vendored uPlot.iife.min.js defines window.uPlot). Each chart keeps its data on
// the element (chart.root.dataset.points) and in window.iotdbConsole.charts, so tests and assistive
// summaries can read what is drawn.
import { toMillis } from './format.js';

const registry = (window.iotdbConsole = window.iotdbConsole || { charts: {} }).charts;

export function chartWidth(container) {
  return Math.max(240, Math.floor(container.getBoundingClientRect().width) - 4);
}

// span (seconds): the x axis always shows the last `span` seconds (a live chart), else the data's range.
export function lineChart(container, name, { series, height = 140, timeAxis = true, onZoom, legend = true, span } = {}) {
  const opts = {
    width: chartWidth(container),
    height,
    scales: { x: { time: timeAxis, range: (u, min, max) => {
      const xs = u.data[0];
      if (!xs || !xs.length) return [min, max];
      const first = xs[0], last = xs[xs.length - 1];
      if (span) return [last - span, last];
      return first === last ? [first - 1, last + 1] : [first, last];
    } } },
    legend: { show: legend, live: true },
    cursor: { drag: { x: !!onZoom, y: false } },
    series: [{ label: 'time' }, ...series.map((s, i) => ({
      label: s.label,
      stroke: s.stroke || ['#0a58ca', '#b3261e', '#146c2e', '#8a4b00'][i % 4],
      width: s.width || 1.5,
      fill: s.fill,
    }))],
    bands: series.some((s) => s.band) ? [{ series: [series.findIndex((s) => s.band === 'upper') + 1,
      series.findIndex((s) => s.band === 'lower') + 1], fill: 'rgba(10, 88, 202, 0.15)' }] : undefined,
    axes: [{ stroke: '#4a5360' }, { stroke: '#4a5360', size: 60 }],
    hooks: onZoom ? {
      setSelect: [(u) => {
        if (u.select.width < 3) return;
        const min = u.posToVal(u.select.left, 'x');
        const max = u.posToVal(u.select.left + u.select.width, 'x');
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        onZoom(min, max);
      }],
    } : {},
  };
  const data = [[], ...series.map(() => [])];
  const plot = new window.uPlot(opts, data, container);
  const chart = {
    plot,
    root: container,
    data,
    set(newData) {
      chart.data = newData;
      plot.setData(newData);
      container.dataset.points = String(newData[0].length);
      registry[name] = { points: newData[0].length, data: newData };
    },
    resize() { plot.setSize({ width: chartWidth(container), height }); },
    destroy() { plot.destroy(); delete registry[name]; },
  };
  registry[name] = { points: 0, data };
  return chart;
}

// Seconds since the epoch for uPlot's time axis, from server timestamps.
export function toSeconds(stamps) { return stamps.map((t) => toMillis(t) / 1000); }
