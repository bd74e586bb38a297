/** The delivery-time chart: time from SendMessage to the last client, by room size, ours vs the seed design. */

interface Point {
  size: number;
  ms: number;
}

export function renderChart(sizes: number[], ours: Point[], seed: Point[], tableRows: number): string {
  const width = 720;
  const height = 420;
  const margin = { left: 70, right: 150, top: 50, bottom: 60 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const maxSize = Math.max(...sizes);
  const maxMs = Math.max(1, ...ours.map((p) => p.ms), ...seed.map((p) => p.ms)) * 1.1;
  const x = (size: number) => margin.left + (size / maxSize) * plotW;
  const y = (ms: number) => margin.top + plotH - (ms / maxMs) * plotH;
  const niceStep = (max: number) => {
    const raw = max / 5;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((m) => m * magnitude).find((step) => step >= raw) ?? raw;
  };
  const yStep = niceStep(maxMs);
  const yTicks = Array.from({ length: Math.floor(maxMs / yStep) + 1 }, (_, i) => i * yStep);
  const line = (points: Point[], color: string, label: string, labelOffset: number) => {
    if (points.length === 0) return "";
    const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.size).toFixed(1)},${y(p.ms).toFixed(1)}`).join(" ");
    const last = points[points.length - 1];
    return [
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2.5"/>`,
      ...points.map((p) => `<circle cx="${x(p.size).toFixed(1)}" cy="${y(p.ms).toFixed(1)}" r="4" fill="${color}"><title>${p.size} connections: ${Math.round(p.ms)} ms</title></circle>`),
      `<text x="${x(last.size) + 10}" y="${y(last.ms) + labelOffset}" fill="${color}" font-weight="600">${label}</text>`,
    ].join("\n  ");
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">
  <rect width="100%" height="100%" fill="white"/>
  <text x="${margin.left}" y="24" font-size="16" font-weight="600">Delivery time by room size (table of ${tableRows.toLocaleString("en-US")} connections)</text>
  <text x="${margin.left}" y="42" fill="#555">SendMessage → last client's receipt, median of 3, local hub on one machine</text>
  ${yTicks.map((t) => `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e7eb"/><text x="${margin.left - 8}" y="${y(t) + 4}" text-anchor="end" fill="#555">${Math.round(t)}</text>`).join("\n  ")}
  ${sizes
    .filter((s, i) => i === 0 || x(s) - x(sizes[i - 1]) >= 36) // no overlapping labels
    .map((s) => `<text x="${x(s)}" y="${margin.top + plotH + 20}" text-anchor="middle" fill="#555">${s.toLocaleString("en-US")}</text>`)
    .join("\n  ")}
  <line x1="${margin.left}" x2="${margin.left + plotW}" y1="${margin.top + plotH}" y2="${margin.top + plotH}" stroke="#333"/>
  <line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#333"/>
  <text x="${margin.left + plotW / 2}" y="${height - 18}" text-anchor="middle">connections in the room</text>
  <text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">milliseconds</text>
  ${line(seed, "#c2410c", "seed design", -6)}
  ${line(ours, "#1d4ed8", "notification-hub", 14)}
</svg>
`;
}
