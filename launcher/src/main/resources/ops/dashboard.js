'use strict';
// The k2 node dashboard: one snapshot per second from /events (server-sent events); everything is drawn here, from
// the node's meters. No library, nothing fetched from elsewhere.
const HISTORY = 300; // seconds of throughput kept in the page
const history = [];
let updates = 0;

const $ = id => document.getElementById(id);
const labelsMatch = (m, want) => Object.entries(want || {}).every(([k, v]) => m.labels[k] === v);
const total = (list, name, want) => list.filter(m => m.name === name && labelsMatch(m, want)).reduce((a, m) => a + (m.value || 0), 0);
const find = (list, name, want) => list.find(m => m.name === name && labelsMatch(m, want));
const fmt = (v, digits = 0) => v == null || !isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function tile(id, label, value) {
  let t = $(id);
  if (!t) {
    t = document.createElement('div');
    t.className = 'tile';
    t.id = id;
    t.innerHTML = '<div class="v"></div><div class="k"></div>';
    $('tiles').appendChild(t);
  }
  t.querySelector('.v').textContent = value;
  t.querySelector('.k').textContent = label;
}

function timerMean(s, name) {
  const ts = s.timers.filter(t => t.name === name);
  const count = ts.reduce((a, t) => a + t.count, 0);
  return count === 0 ? null : ts.reduce((a, t) => a + t.sum, 0) / count;
}

function rate(key) {
  if (history.length < 2) return null;
  const a = history[history.length - 2], b = history[history.length - 1];
  const dt = (b.t - a.t) / 1000;
  return dt > 0 ? (b[key] - a[key]) / dt : null;
}

function renderTiles(s) {
  const c = s.counters, g = s.gauges;
  const accepted = total(c, 'k2_episodes', { outcome: 'accepted' }), episodes = total(c, 'k2_episodes');
  tile('tile-tool-calls', 'tool calls', fmt(total(c, 'k2_tool_calls')));
  tile('tile-tool-rate', 'tool calls/s', fmt(rate('calls')));
  tile('tile-episodes', 'episodes judged', fmt(episodes));
  tile('tile-accepted', 'accepted', episodes ? fmt(100 * accepted / episodes, 1) + '%' : '–');
  tile('tile-refusals', 'firewall refusals', fmt(total(c, 'k2_firewall_refusals')));
  const jw = timerMean(s, 'k2_journal_write');
  tile('tile-journal', 'journal write, mean', jw == null ? '–' : fmt(jw * 1000, 1) + ' ms');
  tile('tile-backlog', 'collector backlog', fmt(total(g, 'k2_collector_backlog')));
  const tps = g.filter(m => m.name === 'k2_learner_tokens_per_second' && m.value != null).reduce((a, m) => a + m.value, 0);
  tile('tile-learner-tps', 'learner tokens/s (last steps)', fmt(tps));
  const ls = timerMean(s, 'k2_learner_step');
  tile('tile-learner-step', 'learner step, mean', ls == null ? '–' : fmt(ls * 1000, 0) + ' ms');
  const v = find(g, 'k2_ps_version');
  tile('tile-ps-version', 'weights version', v ? fmt(v.value) : '–');
  tile('tile-stale', 'refused as stale', fmt(total(c, 'k2_ps_refused_stale')));
  const ps = timerMean(s, 'k2_ps_step');
  tile('tile-ps-step', 'PS step, mean', ps == null ? '–' : fmt(ps * 1000, 0) + ' ms');
  const d = s.timers.find(t => t.name === 'k2_dispatcher_delay');
  tile('tile-dispatcher', 'dispatcher delay, last', d && d.count ? fmt(d.last * 1000, 2) + ' ms' : '–');
  if (s.jvm) tile('tile-heap', 'heap used / max', fmt(s.jvm.heapUsed / 1048576) + ' / ' + fmt(s.jvm.heapMax / 1048576) + ' MiB');
}

function renderMembers(s) {
  const body = $('members').querySelector('tbody');
  body.replaceChildren(...s.members.map(m => {
    const tr = document.createElement('tr');
    for (const text of [m.address + (m.address === s.node ? ' (this node)' : ''), m.status + (m.reachable ? '' : ', unreachable'), m.roles.join(', ')]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  }));
}

function renderStages(s) {
  const totals = s.gauges.filter(m => m.name === 'k2_stage_target');
  if (totals.length === 0) return;
  $('stages').replaceChildren(...totals.map(t => {
    const stage = t.labels.stage;
    const done = (find(s.gauges, 'k2_stage_done', { stage }) || {}).value || 0;
    const pct = t.value > 0 ? Math.min(100, 100 * done / t.value) : 0;
    const div = document.createElement('div');
    div.className = 'stage';
    div.dataset.stage = stage;
    div.innerHTML = '<div><b></b> <span class="muted"></span></div><div class="bar"><div></div></div>';
    div.querySelector('b').textContent = stage;
    div.querySelector('span').textContent = fmt(done) + ' / ' + fmt(t.value) + ' (' + fmt(pct, 0) + '%)';
    div.querySelector('.bar > div').style.width = pct + '%';
    return div;
  }));
}

const COLORS = ['#4fb3ff', '#ffb84f', '#7bd88f', '#ff6b9a'];

/** Lines on a canvas: each of `lines` is {label, points: [[x, y], ...]}; one y scale (or one per line when `own`). */
function plot(canvas, legend, lines, own) {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const ctx = canvas.getContext('2d');
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, h);
  const pad = { l: 48, r: 48, t: 10, b: 20 };
  const all = lines.flatMap(l => l.points);
  legend.replaceChildren(...lines.map((l, i) => {
    const span = document.createElement('span');
    const last = l.points.length ? l.points[l.points.length - 1][1] : null;
    span.innerHTML = '<i></i>';
    span.querySelector('i').style.background = COLORS[i % COLORS.length];
    span.append(l.label + ' ' + fmt(last, l.digits || 0));
    return span;
  }));
  if (all.length === 0) {
    ctx.fillStyle = '#8a96a3';
    ctx.fillText('no data yet', w / 2 - 30, h / 2);
    return;
  }
  const x0 = Math.min(...all.map(p => p[0])), x1 = Math.max(...all.map(p => p[0]));
  const scale = pts => {
    const ys = pts.map(p => p[1]);
    let lo = Math.min(0, ...ys), hi = Math.max(...ys);
    if (hi === lo) hi = lo + 1;
    return [lo, hi];
  };
  const shared = scale(all);
  ctx.strokeStyle = '#2a3542';
  ctx.fillStyle = '#8a96a3';
  ctx.font = '11px system-ui';
  ctx.beginPath();
  ctx.moveTo(pad.l, pad.t);
  ctx.lineTo(pad.l, h - pad.b);
  ctx.lineTo(w - pad.r, h - pad.b);
  ctx.stroke();
  if (!own) {
    ctx.fillText(fmt(shared[1], 2), 2, pad.t + 8);
    ctx.fillText(fmt(shared[0], 2), 2, h - pad.b);
  }
  ctx.fillText(fmt(x0), pad.l, h - 4);
  ctx.fillText(fmt(x1), w - pad.r - 40, h - 4);
  lines.forEach((l, i) => {
    if (l.points.length === 0) return;
    const [lo, hi] = own ? scale(l.points) : shared;
    if (own && i < 2) { // each line's own range, in its colour, left for the first and right for the second
      ctx.fillStyle = COLORS[i];
      const x = i === 0 ? 2 : w - pad.r - 44;
      ctx.fillText(fmt(hi, l.digits || 0), x, pad.t + 8);
      ctx.fillText(fmt(lo, l.digits || 0), x, h - pad.b - 2);
    }
    const X = x => pad.l + (x1 === x0 ? 0 : (x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const Y = y => h - pad.b - (y - lo) / (hi - lo) * (h - pad.t - pad.b);
    ctx.strokeStyle = COLORS[i % COLORS.length];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    l.points.forEach((p, j) => j === 0 ? ctx.moveTo(X(p[0]), Y(p[1])) : ctx.lineTo(X(p[0]), Y(p[1])));
    ctx.stroke();
  });
}

function renderThroughput() {
  const since = history.length ? history[0].t : 0;
  const perSecond = key => {
    const pts = [];
    for (let i = 1; i < history.length; i++) {
      const dt = (history[i].t - history[i - 1].t) / 1000;
      if (dt > 0) pts.push([(history[i].t - since) / 1000, (history[i][key] - history[i - 1][key]) / dt]);
    }
    return pts;
  };
  plot($('throughput'), $('throughput-legend'), [
    { label: 'tool calls/s', points: perSecond('calls') },
    { label: 'episodes/s', points: perSecond('episodes') },
    { label: 'learner tokens/s', points: perSecond('tokens') },
  ], true);
}

function renderCurves(s) {
  const series = name => (s.series.find(x => x.name === name) || { points: [] }).points;
  plot($('curves'), $('curves-legend'), [
    { label: 'loss', points: series('k2_ps_loss'), digits: 3 },
    { label: 'reward', points: series('k2_ps_reward'), digits: 3 },
  ], true);
}

function heat(r) {
  // S_max / tau in [0, 1]: navy -> blue -> amber -> red at tau
  const stops = [[0, [29, 43, 58]], [0.5, [47, 111, 176]], [0.85, [224, 160, 48]], [1, [224, 64, 48]]];
  r = Math.max(0, Math.min(1, r));
  for (let i = 1; i < stops.length; i++) {
    if (r <= stops[i][0]) {
      const [a, ca] = stops[i - 1], [b, cb] = stops[i], f = (r - a) / (b - a);
      return 'rgb(' + ca.map((c, k) => Math.round(c + f * (cb[k] - c))).join(',') + ')';
    }
  }
  return 'rgb(224,64,48)';
}

function renderHeatmap(s) {
  const cells = s.gauges.filter(m => m.name === 'k2_clip_max_logit');
  if (cells.length === 0) return;
  const tauGauge = find(s.gauges, 'k2_clip_tau');
  const tau = tauGauge ? tauGauge.value : null;
  $('tau').textContent = tau == null ? '' : '(tau ' + fmt(tau, 1) + ')';
  const layers = Math.max(...cells.map(c => +c.labels.layer)) + 1, heads = Math.max(...cells.map(c => +c.labels.head)) + 1;
  let table = $('heatmap').querySelector('table');
  if (!table || table.dataset.shape !== layers + 'x' + heads) {
    table = document.createElement('table');
    table.dataset.shape = layers + 'x' + heads;
    const head = table.createTHead().insertRow();
    head.appendChild(document.createElement('th'));
    for (let h = 0; h < heads; h++) head.appendChild(Object.assign(document.createElement('th'), { textContent: 'head ' + h }));
    const body = table.createTBody();
    for (let l = 0; l < layers; l++) {
      const row = body.insertRow();
      row.appendChild(Object.assign(document.createElement('th'), { textContent: 'layer ' + l }));
      for (let h = 0; h < heads; h++) {
        const td = row.insertCell();
        td.className = 'cell';
        td.id = 'cell-' + l + '-' + h;
        td.dataset.layer = l;
        td.dataset.head = h;
      }
    }
    $('heatmap').replaceChildren(table);
  }
  for (const c of cells) {
    const td = $('cell-' + c.labels.layer + '-' + c.labels.head);
    const rescales = total(s.counters, 'k2_clip_rescales', { layer: c.labels.layer, head: c.labels.head });
    td.textContent = fmt(c.value, 1);
    td.title = 'layer ' + c.labels.layer + ', head ' + c.labels.head + ': S_max ' + fmt(c.value, 2) + (tau ? ' (' + fmt(100 * c.value / tau, 0) + '% of tau)' : '') + ', ' + rescales + ' rescales';
    td.style.background = c.value == null || !tau ? '#1d2b3a' : heat(c.value / tau);
    td.classList.toggle('rescaled', rescales > 0);
    if (rescales > 0) td.appendChild(Object.assign(document.createElement('sup'), { textContent: '×' + rescales }));
  }
}

function render(s) {
  updates++;
  $('updates').textContent = updates;
  $('node').textContent = s.node;
  history.push({ t: s.time, calls: total(s.counters, 'k2_tool_calls'), episodes: total(s.counters, 'k2_episodes'), tokens: total(s.counters, 'k2_learner_tokens') });
  while (history.length > HISTORY) history.shift();
  renderTiles(s);
  renderMembers(s);
  renderStages(s);
  renderThroughput();
  renderCurves(s);
  renderHeatmap(s);
}

const events = new EventSource('events');
events.onopen = () => { $('live').className = 'on'; $('live').textContent = 'live'; };
events.onerror = () => { $('live').className = 'off'; $('live').textContent = 'reconnecting'; };
events.onmessage = e => render(JSON.parse(e.data));
