// Feedback after the call: the scores on the result screen (per answer: the score, findings with
// their quoted evidence highlighted in the transcript, the improved answer, delivery), and the
// skills screen (#/skills): each skill's level with a trend chart drawn here as inline SVG from
// its history, and the drill plan whose "Practise this" starts an interview focused on a skill.
// No chart library: the SVG is built element by element, all text inserted as text. The usage
// screen (#/usage) lists the account's own vendor calls per interview and provider, with cost
// and who was billed.

import * as api from './api.js';
import { $, busy, el, formError, formatDate } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';
const RULES = {
  no_star_structure: 'No situation–task–action–result shape',
  missing_result: 'No outcome stated',
  result_not_specific: 'Outcome is vague',
  missing_metrics: 'No numbers',
  no_tradeoff: 'No alternative weighed',
  no_assumptions: 'No assumptions or estimates',
  shallow_followup: 'Did not go deeper when asked',
  rambling: 'Answer ran long',
  filler_spike: 'Many filler words',
  no_ownership: '"We" throughout, not what you did',
  no_scale_thinking: 'No thought about scale',
  no_stakeholder_mgmt: 'No stakeholders handled',
  no_mentoring_signal: 'No team growth or mentoring',
  weak_anchor: 'Weak first number',
  early_concession: 'Conceded early',
};
const GRADES = { excellent: 'excellent', good: 'good', fair: 'fair', needs_work: 'needs work' };
// The interview kind a drill of an area runs in.
const AREA_KIND = { system_design: 'system_design', technical: 'technical' };

let startFocused = async () => {};
let scoresSeq = 0;

function label(skill) {
  return skill.replace(/_/g, ' ');
}

function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([name, value]) => node.setAttribute(name, String(value)));
  children.forEach((child) => node.append(child));
  return node;
}

/** Wraps each quote (by character range) of a transcript line's words in <mark>; overlapping
 * quotes merge into one mark naming every finding. */
function highlight(words, ranges) {
  const text = words.textContent;
  const merged = [];
  ranges
    .sort((a, b) => a.start - b.start)
    .forEach((range) => {
      const last = merged[merged.length - 1];
      if (last && range.start <= last.end) {
        last.end = Math.max(last.end, range.end);
        last.titles.push(range.title);
        last.rules.push(range.rule);
      } else merged.push({ start: range.start, end: range.end, titles: [range.title], rules: [range.rule] });
    });
  const parts = [];
  let at = 0;
  merged.forEach((range) => {
    parts.push(document.createTextNode(text.slice(at, range.start)));
    parts.push(el('mark', { text: text.slice(range.start, range.end), attrs: { title: range.titles.join('; '), 'data-rules': range.rules.join(' ') } }));
    at = range.end;
  });
  parts.push(document.createTextNode(text.slice(at)));
  words.replaceChildren(...parts);
}

function markEvidence(answers) {
  const lines = Array.from(document.querySelectorAll('#result-transcript li[data-speaker=candidate]'));
  const ranges = new Map();
  answers.forEach((answer) => {
    (answer.findings || []).forEach((finding) => {
      const { quote, start_ms: start } = finding.evidence;
      // The line whose span holds the evidence (same clock), else any line with the words.
      const line =
        lines.find((l) => Number(l.dataset.start) <= start && start <= Number(l.dataset.end) && l.textContent.includes(quote)) ||
        lines.find((l) => l.textContent.includes(quote));
      if (!line) return;
      const words = line.querySelector('.words');
      const index = words.textContent.indexOf(quote);
      if (index < 0) return;
      if (!ranges.has(words)) ranges.set(words, []);
      ranges.get(words).push({ start: index, end: index + quote.length, title: RULES[finding.rule] || finding.rule, rule: finding.rule });
    });
  });
  ranges.forEach((list, words) => highlight(words, list));
}

function deliveryFacts(delivery) {
  if (!delivery) return el('p', { text: 'No delivery metrics (no word timings).', className: 'muted' });
  const fillers = Object.entries(delivery.fillers || {}).map(([word, n]) => `${word} ×${n}`).join(', ') || 'none';
  const facts = [
    ['Delivery', `${Math.round(delivery.score)} / 100 (${GRADES[delivery.grade] || delivery.grade})`],
    ['Pace', `${Math.round(delivery.words_per_minute)} words per minute`],
    ['Fillers', `${delivery.filler_count} (${fillers})`],
    ['Hesitations (≥ 1.5 s)', String(delivery.hesitations)],
    ['Long pauses (≥ 3 s)', String(delivery.long_pauses)],
  ];
  return el('dl', { className: 'facts delivery' }, facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
}

function answerCard(answer) {
  const card = el('article', { className: 'answer', attrs: { 'data-index': String(answer.index) } });
  card.append(el('h3', { text: answer.question || 'Your answer' }));
  card.append(el('p', { className: 'score' }, [
    el('strong', { text: `${Math.round(answer.overall)}`, className: 'overall' }),
    document.createTextNode(' / 100'),
    el('span', { className: 'muted', text: ` · confidence ${Math.round(answer.confidence * 100)} %` }),
  ]));
  const c = answer.categories || {};
  card.append(el('p', { className: 'muted', text: `Structure ${Math.round(c.structure)} · Depth ${Math.round(c.depth)} · Communication ${Math.round(c.communication)} · Seniority ${Math.round(c.seniority_signal)}` }));
  const findings = answer.findings || [];
  if (findings.length === 0) card.append(el('p', { text: 'No findings: a well-shaped answer.' }));
  else {
    card.append(el('ul', { className: 'findings' }, findings.map((f) => el('li', { attrs: { 'data-rule': f.rule, 'data-confidence': f.confidence } }, [
      el('strong', { text: RULES[f.rule] || f.rule }),
      el('span', { className: 'muted', text: f.confidence === 'strong' ? ' (clear)' : ' (possible)' }),
      document.createTextNode(': '),
      el('q', { text: f.evidence.quote, className: 'evidence' }),
      el('span', { text: ` — ${f.fix}` }),
    ]))));
  }
  card.append(el('details', {}, [el('summary', { text: 'Improved answer' }), el('p', { text: answer.improved_answer, className: 'improved' })]));
  card.append(deliveryFacts(answer.delivery));
  return card;
}

/** Shows an interview's scores on the result screen, waiting for the job if it is running. */
export async function loadScores(id) {
  const seq = ++scoresSeq;
  const box = $('#result-scores');
  const status = $('#result-scores-status');
  const list = $('#result-answers');
  list.replaceChildren();
  formError(box, null);
  box.dataset.state = 'loading';
  status.textContent = 'Scoring your answers…';
  const deadline = Date.now() + 90000;
  try {
    for (;;) {
      const body = await api.request('GET', `/api/v1/interviews/${encodeURIComponent(id)}/scores`);
      if (seq !== scoresSeq) return;
      if (body.state === 'done' || body.state === 'skipped' || body.state === 'failed' || Date.now() > deadline) {
        box.dataset.state = body.state;
        if (body.state === 'skipped') status.textContent = 'No answer was long enough to score (15 words or more).';
        else if (body.state === 'failed') status.textContent = 'Scoring failed; try again later.';
        else if (body.state !== 'done') status.textContent = 'Scoring is taking longer than usual; come back later.';
        else status.textContent = `${body.answers.length} answer(s) scored.`;
        if (body.delivery) list.append(el('div', { className: 'interview-delivery' }, [el('h3', { text: 'Delivery over the interview' }), deliveryFacts(body.delivery)]));
        body.answers.forEach((answer) => list.append(answerCard(answer)));
        markEvidence(body.answers);
        return;
      }
      if (body.state === 'none') {
        status.textContent = 'Scores appear once the interview has ended.';
        box.dataset.state = 'none';
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (seq !== scoresSeq) return;
    }
  } catch (error) {
    formError(box, error);
  }
}

/** The trend chart of one skill: levels over its updates, 0–100, as inline SVG. */
export function trendChart(skill, history) {
  const width = 300;
  const height = 90;
  const pad = 6;
  const points = history.map((p) => p.level);
  if (points.length > 0 && history[0].previous_level != null) points.unshift(history[0].previous_level);
  const x = (i) => pad + (points.length <= 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (points.length - 1));
  const y = (level) => pad + ((100 - level) * (height - 2 * pad)) / 100;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'trend', 'aria-label': `${label(skill)}: ${points.map((p) => Math.round(p)).join(', ')}` });
  chart.append(svg('title', {}, [document.createTextNode(`${label(skill)} over time`)]));
  [0, 50, 100].forEach((level) => chart.append(svg('line', { x1: pad, x2: width - pad, y1: y(level), y2: y(level), class: 'grid' })));
  if (points.length > 1) chart.append(svg('polyline', { points: points.map((p, i) => `${x(i).toFixed(1)},${y(p).toFixed(1)}`).join(' '), class: 'line', fill: 'none' }));
  points.forEach((p, i) => chart.append(svg('circle', { cx: x(i).toFixed(1), cy: y(p).toFixed(1), r: 3, class: 'point' })));
  return chart;
}

function skillItem(skill, history) {
  const li = el('li', { attrs: { 'data-skill': skill.skill, 'data-trend': skill.trend } });
  li.append(el('h3', { text: label(skill.skill) }));
  li.append(el('p', {}, [
    el('meter', { attrs: { min: '0', max: '100', low: '40', high: '75', optimum: '100', value: String(skill.level), 'aria-label': `${label(skill.skill)} level` } }),
    el('span', { text: ` ${Math.round(skill.level)} (best ${Math.round(skill.best_level)}), ${skill.trend}; review by ${formatDate(skill.next_review_at)}` }),
  ]));
  li.append(trendChart(skill.skill, history));
  return li;
}

function slotItem(slot, areas) {
  const li = el('li', { attrs: { 'data-skill': slot.skill } });
  li.append(el('strong', { text: `${formatDate(`${slot.day}T12:00:00`)}: ${label(slot.skill)}` }));
  li.append(el('span', { text: ` — ${slot.questions} question(s), about ${slot.minutes} min; ${slot.focus}, aim for ${Math.round(slot.target_level)}. ` }));
  const button = el('button', { text: 'Practise this', className: 'practise', attrs: { type: 'button' } });
  button.addEventListener('click', () => busy(li, () => startFocused(AREA_KIND[areas[slot.skill]] || 'behavioral', slot.skill)));
  li.append(button);
  return li;
}

/** The skills screen. */
export async function loadSkills() {
  const view = $('#view-skills');
  const list = $('#skills-list');
  const plan = $('#drills-list');
  list.replaceChildren();
  plan.replaceChildren();
  formError(view, null);
  try {
    const [skills, drills] = await Promise.all([api.request('GET', '/api/v1/skills'), api.request('GET', '/api/v1/drills')]);
    const areas = Object.fromEntries((skills.microskills || []).map(([skill, area]) => [skill, area]));
    $('#skills-off').hidden = skills.skill_tracking;
    $('#skills-empty').hidden = !skills.skill_tracking || skills.skills.length > 0;
    const histories = await Promise.all(skills.skills.map((s) => api.request('GET', `/api/v1/skills/${encodeURIComponent(s.skill)}/history`)));
    skills.skills.forEach((skill, i) => list.append(skillItem(skill, histories[i].history || [])));
    const cadence = { daily: 'every day', weekdays: 'on weekdays', three_per_week: 'Monday, Wednesday and Friday' }[drills.cadence] || drills.cadence;
    $('#drills-cadence').textContent = drills.slots.length ? `Practice ${cadence}${drills.target_date ? `, before your interview on ${formatDate(`${drills.target_date}T12:00:00`)}` : ''}.` : 'Hold an interview to get a plan.';
    drills.slots.forEach((slot) => plan.append(slotItem(slot, areas)));
  } catch (error) {
    formError(view, error);
  }
}

const BILLED_TO = { platform: 'InterviewCraft', your_own_key: 'your own key', nobody: 'nobody (local)' };

function dollars(microUsd) {
  // Under a dollar, to a hundredth of a cent: one call costs fractions of a cent.
  return `$${(microUsd / 1e6).toFixed(microUsd < 1e6 ? 4 : 2)}`;
}

function usageRow(interview, provider) {
  const t = provider;
  const where = interview.interview_id
    ? el('a', { text: interview.interview_id.slice(-8), attrs: { href: `#/result?id=${encodeURIComponent(interview.interview_id)}` } })
    : el('span', { text: 'outside interviews' });
  const cells = [
    provider.provider,
    BILLED_TO[provider.billed_to] || provider.billed_to,
    String(t.calls),
    `${t.input_tokens + t.cache_read_tokens + t.cache_creation_tokens} / ${t.output_tokens}`,
    t.audio_seconds.toFixed(1),
    String(t.characters),
    `${Math.round(t.avg_latency_ms)} ms`,
    dollars(t.cost_micro_usd),
  ];
  return el('tr', { attrs: { 'data-provider': provider.provider, 'data-billed-to': provider.billed_to } }, [
    el('td', {}, [where]),
    ...cells.map((text) => el('td', { text })),
  ]);
}

/** The usage screen. */
export async function loadUsage() {
  const view = $('#view-usage');
  const table = $('#usage-table');
  const body = table.querySelector('tbody');
  body.replaceChildren();
  formError(view, null);
  try {
    const usage = await api.request('GET', '/api/v1/usage');
    usage.interviews.forEach((interview) => interview.providers.forEach((p) => body.append(usageRow(interview, p))));
    const any = body.children.length > 0;
    table.hidden = !any;
    $('#usage-empty').hidden = any;
    $('#usage-summary').textContent = any
      ? `${usage.totals.calls} call(s), ${dollars(usage.totals.cost_micro_usd)} in all; ${dollars(usage.platform_cost_micro_usd)} on InterviewCraft's keys.`
      : '';
    $('#usage-retention').textContent = `Usage is kept ${usage.retention_days} days. Calls on your own keys are billed to you by the vendor.`;
  } catch (error) {
    formError(view, error);
  }
}

export function setup({ focusedInterview }) {
  startFocused = focusedInterview;
}
