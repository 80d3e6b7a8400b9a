// The interview screens: choose an interview and see the history (#/interview), the microphone
// check (#/mic), the live interview (#/live) and, afterwards, the transcript with the latency
// of each turn (#/result?id=…).
//
// The live call: one RTCPeerConnection, audio only, no STUN/TURN needed on a LAN (host
// candidates; the offer is sent once gathering is complete, so no trickle ICE). Events come over
// a WebSocket authenticated by a single-use ticket (POST …/events-ticket): the access token never
// appears in a URL. Closing the socket does not end the interview; the End button does.

import * as api from './api.js';
import * as feedback from './feedback.js';
import { $, busy, el, formError, formatDateTime, localError } from './ui.js';

let go = () => {};
// The interview being prepared or held: { id } (a created, not yet started interview).
let current = null;
let micCheck = null; // { stream, context, frame }
let call = null; // the live call, see startCall()

const KINDS = { behavioral: 'Behavioral', system_design: 'System design', technical: 'Technical' };
const STATES = {
  connecting: 'connecting…',
  greeting: 'greeting you',
  listening: 'listening',
  thinking: 'thinking',
  speaking: 'speaking',
  ending: 'wrapping up',
  ended: 'ended',
};
// Echo cancellation keeps the interviewer's voice from your speakers out of the microphone (it
// would interrupt the interviewer); with headphones it can be turned off for a cleaner signal.
function audioConstraints() {
  const headphones = $('#mic-headphones').checked;
  return { audio: { echoCancellation: !headphones, noiseSuppression: false, autoGainControl: false } };
}

const LOCAL_MODE_TEXT = {
  stt: {
    local: 'speech recognition runs on this machine',
    fake: 'speech recognition is simulated (your words are not transcribed)',
  },
  llm: {
    local: 'the interviewer is a simple rule-based program on this machine: it asks from a question bank and chooses follow-ups from the shape of your answers',
    fake: 'the interviewer follows a fixed script',
  },
  tts: {
    local: 'the voice is espeak-ng, on this machine',
    fake: 'the voice is a synthetic tone',
  },
};

/** Says per vendor kind what runs locally or simulated (GET /health → vendors, local_notes). */
async function showLocalMode() {
  try {
    const response = await fetch('/health', { cache: 'no-store' });
    const health = await response.json();
    const vendors = (health && health.vendors) || {};
    const notes = (health && Array.isArray(health.local_notes) && health.local_notes) || [];
    const parts = ['stt', 'llm', 'tts']
      .map((kind) => (LOCAL_MODE_TEXT[kind] || {})[vendors[kind]])
      .filter(Boolean);
    const local = parts.length > 0;
    const installs = notes
      .filter((note) => note && note.package)
      .map((note) => `install the package ${note.package} for the local ${note.kind === 'tts' ? 'voice' : 'recognizer'}`);
    let text = '';
    if (local) {
      text = `Keyless local mode: ${parts.join('; ')}.`;
      if (installs.length > 0) text += ` To improve it, ${installs.join(' and ')}.`;
    }
    document.querySelectorAll('.local-mode').forEach((banner) => {
      banner.hidden = !local;
      if (local) banner.textContent = text;
      for (const kind of ['stt', 'llm', 'tts']) banner.dataset[kind] = vendors[kind] || '';
    });
    document.body.dataset.localMode = local ? 'true' : 'false';
  } catch {
    // The banner stays hidden; the interview still works.
  }
}

function routeParam(name) {
  const query = location.hash.split('?')[1] || '';
  return new URLSearchParams(query).get(name);
}

// ---------------------------------------------------------------- choose and history

async function loadChooser() {
  stopMicCheck();
  await showLocalMode();
  const card = $('#interview-history').closest('.card');
  formError(card, null);
  const list = $('#interview-history');
  list.replaceChildren();
  try {
    const body = await api.request('GET', '/api/v1/interviews');
    const items = (body && body.interviews) || [];
    $('#interview-history-empty').hidden = items.length > 0;
    items.forEach((item) => list.append(historyItem(item)));
  } catch (error) {
    formError(card, error);
  }
}

function historyItem(item) {
  const parts = [KINDS[item.kind] || item.kind];
  if (item.target_role) parts.push(item.target_role);
  if (item.company) parts.push(item.company);
  const label = `${parts.join(' · ')} — ${formatDateTime(item.created_at)}`;
  const li = el('li', { attrs: { 'data-id': item.id, 'data-status': item.status } });
  li.append(el('span', { text: label }), ' ');
  if (item.status === 'created' && !item.live) {
    const button = el('button', { text: 'Start', className: 'link-button', attrs: { type: 'button' } });
    button.addEventListener('click', () => {
      current = { id: item.id };
      go('mic');
    });
    li.append(button);
  } else if (item.live) {
    li.append(el('span', { text: '(in progress)', className: 'muted' }));
  } else {
    li.append(el('a', { text: 'Transcript', attrs: { href: `#/result?id=${encodeURIComponent(item.id)}` } }));
  }
  return li;
}

async function createInterview(event) {
  event.preventDefault();
  const form = $('#interview-form');
  await busy(form, async () => {
    const body = { kind: $('#interview-kind').value, length_minutes: Number($('#interview-length').value) };
    const role = $('#interview-role').value.trim();
    const company = $('#interview-company').value.trim();
    if (role.length > 100 || company.length > 100) throw localError('Role and company: at most 100 characters.');
    if (role) body.target_role = role;
    if (company) body.company = company;
    const created = await api.request('POST', '/api/v1/interviews', body);
    current = { id: created.id };
    go('mic');
  });
}

// ---------------------------------------------------------------- microphone check

function stopMicCheck() {
  if (!micCheck) return;
  cancelAnimationFrame(micCheck.frame);
  micCheck.stream.getTracks().forEach((track) => track.stop());
  micCheck.context.close().catch(() => {});
  micCheck = null;
}

async function loadMicCheck() {
  const view = $('#view-mic');
  formError(view, null);
  if (!current) {
    go('interview');
    return;
  }
  stopMicCheck();
  $('#mic-status').textContent = 'Asking for the microphone…';
  try {
    const stream = await navigator.mediaDevices.getUserMedia(audioConstraints());
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    micCheck = { stream, context, frame: 0 };
    const meter = $('#mic-level');
    const draw = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      const rms = Math.sqrt(sum / samples.length);
      meter.value = Math.min(1, rms * 4);
      meter.dataset.peak = String(Math.max(Number(meter.dataset.peak || 0), rms));
      if (micCheck) micCheck.frame = requestAnimationFrame(draw);
    };
    draw();
    $('#mic-status').textContent = 'Microphone on.';
  } catch (error) {
    $('#mic-status').textContent = '';
    formError(view, localError(`The microphone is not available: ${error.message || error}`));
  }
}

// ---------------------------------------------------------------- the live interview

function setState(phase) {
  $('#live-state').textContent = STATES[phase] || phase;
  document.body.dataset.interviewState = phase;
}

function addLine(speaker, text) {
  const line = el('li', { className: speaker, attrs: { 'data-speaker': speaker } }, [
    el('span', { text: speaker === 'candidate' ? 'You: ' : 'Interviewer: ', className: 'who' }),
    el('span', { text, className: 'words' }),
  ]);
  $('#live-transcript').append(line);
  return line;
}

function onEvent(event) {
  if (!call) return;
  switch (event.type) {
    case 'state':
      setState(event.phase);
      // A new reply starts a new interviewer line.
      if (event.phase !== 'speaking' && event.phase !== 'greeting') call.interviewerLine = null;
      break;
    case 'interim':
      $('#live-interim').textContent = event.text;
      break;
    case 'final':
      $('#live-interim').textContent = '';
      if (event.text) addLine('candidate', event.text);
      break;
    case 'interviewer_text':
      if (!call.interviewerLine) call.interviewerLine = addLine('interviewer', '');
      $('.words', call.interviewerLine).textContent += (call.interviewerLine.dataset.started ? ' ' : '') + event.text;
      call.interviewerLine.dataset.started = 'true';
      break;
    case 'turn':
      call.turns += 1;
      document.body.dataset.turns = String(call.turns);
      break;
    case 'ended':
      finishCall(event.reason);
      break;
    default:
      break;
  }
}

function waitForGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function openEvents(id) {
  const { ticket } = await api.request('POST', `/api/v1/interviews/${id}/events-ticket`);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/api/v1/interviews/${id}/events?ticket=${encodeURIComponent(ticket)}`);
  socket.addEventListener('message', (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch {
      // Not JSON: ignore.
    }
  });
  return socket;
}

async function updateStats() {
  if (!call || !call.pc) return;
  const report = await call.pc.getStats();
  let inbound = null;
  let pair = null;
  const byId = new Map();
  report.forEach((stat) => {
    byId.set(stat.id, stat);
    if (stat.type === 'inbound-rtp' && stat.kind === 'audio') inbound = stat;
    if (stat.type === 'transport' && stat.selectedCandidatePairId) pair = stat.selectedCandidatePairId;
  });
  if (inbound) {
    const energy = inbound.totalAudioEnergy || 0;
    $('#live-received').textContent = `${inbound.packetsReceived || 0} packets, ${inbound.packetsLost || 0} lost`;
    const stats = $('#live-stats');
    stats.dataset.packetsReceived = String(inbound.packetsReceived || 0);
    stats.dataset.packetsLost = String(inbound.packetsLost || 0);
    stats.dataset.audioEnergy = String(energy);
  }
  const selected = pair && byId.get(pair);
  if (selected) {
    const local = byId.get(selected.localCandidateId);
    const remote = byId.get(selected.remoteCandidateId);
    if (local && remote) {
      $('#live-route').textContent = `${local.address} ⇄ ${remote.address} (${remote.candidateType})`;
      $('#live-stats').dataset.localAddress = local.address || '';
      $('#live-stats').dataset.remoteAddress = remote.address || '';
    }
  }
}

async function startCall() {
  const view = $('#view-live');
  formError(view, null);
  $('#live-transcript').replaceChildren();
  $('#live-interim').textContent = '';
  $('#live-connection').textContent = '';
  $('#live-route').textContent = '';
  $('#live-received').textContent = '';
  const stats = $('#live-stats');
  Object.keys(stats.dataset).forEach((key) => delete stats.dataset[key]);
  document.body.dataset.turns = '0';
  setState('connecting');
  await showLocalMode();
  const id = current.id;
  call = { id, pc: null, stream: null, socket: null, interviewerLine: null, turns: 0, timer: 0, finished: false };
  document.body.dataset.interviewId = id;
  try {
    // A fresh capture for the call (the check's capture is stopped first).
    stopMicCheck();
    const stream = await navigator.mediaDevices.getUserMedia(audioConstraints());
    call.stream = stream;
    const pc = new RTCPeerConnection({ iceServers: [] });
    call.pc = pc;
    const [track] = stream.getAudioTracks();
    pc.addTransceiver(track, { direction: 'sendrecv', streams: [stream] });
    pc.addEventListener('track', (event) => {
      const audio = new Audio();
      audio.autoplay = true;
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      audio.play().catch(() => {});
      call.audio = audio;
    });
    pc.addEventListener('connectionstatechange', () => {
      $('#live-connection').textContent = pc.connectionState;
      document.body.dataset.connection = pc.connectionState;
      if (pc.connectionState === 'failed') {
        formError(view, localError('The connection to the server was lost.'));
        finishCall('connection lost');
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc, 3000);
    const answer = await api.request('POST', `/api/v1/interviews/${id}/offer`, {
      type: 'offer',
      sdp: pc.localDescription.sdp,
    });
    await pc.setRemoteDescription(answer);
    call.socket = await openEvents(id);
    call.timer = setInterval(() => {
      updateStats().catch(() => {});
    }, 500);
  } catch (error) {
    formError(view, error);
    stopCall();
    current = null;
  }
}

function stopCall() {
  if (!call) return;
  clearInterval(call.timer);
  if (call.socket) call.socket.close();
  if (call.pc) call.pc.close();
  if (call.stream) call.stream.getTracks().forEach((track) => track.stop());
  if (call.audio) call.audio.srcObject = null;
  call = null;
}

async function finishCall(reason) {
  if (!call || call.finished) return;
  call.finished = true;
  const id = call.id;
  document.body.dataset.endReason = reason || '';
  await updateStats().catch(() => {});
  stopCall();
  current = null;
  go(`result?id=${encodeURIComponent(id)}`);
}

function toggleMute() {
  if (!call || !call.stream) return;
  const button = $('#live-mute');
  const muted = button.getAttribute('aria-pressed') !== 'true';
  call.stream.getAudioTracks().forEach((track) => {
    track.enabled = !muted;
  });
  button.setAttribute('aria-pressed', muted ? 'true' : 'false');
  button.textContent = muted ? 'Unmute' : 'Mute';
}

async function endInterview() {
  if (!call) return;
  const id = call.id;
  const ok = await busy($('#view-live'), () => api.request('POST', `/api/v1/interviews/${id}/end`));
  // The "ended" event normally takes us to the transcript; if the socket is gone, go anyway.
  if (ok) {
    setTimeout(() => {
      if (call && call.id === id) finishCall('ended by you');
    }, 8000);
  }
}

// ---------------------------------------------------------------- after the interview

function ms(value) {
  return typeof value === 'number' ? String(Math.round(value)) : '–';
}

async function loadResult() {
  const view = $('#view-result');
  formError(view.querySelector('.card'), null);
  const id = routeParam('id');
  const list = $('#result-transcript');
  const rows = $('#result-turns tbody');
  list.replaceChildren();
  rows.replaceChildren();
  $('#result-meta').textContent = '';
  if (!id) return;
  try {
    const body = await api.request('GET', `/api/v1/interviews/${encodeURIComponent(id)}`);
    const interview = body.interview;
    const reason = interview.end_reason ? ` Ended: ${interview.end_reason}.` : '';
    $('#result-meta').textContent = `${KINDS[interview.kind] || interview.kind}, ${formatDateTime(interview.created_at)}.${reason}`;
    (body.transcript || []).forEach((segment) => {
      const line = el('li', { className: segment.speaker, attrs: { 'data-speaker': segment.speaker, 'data-interrupted': String(Boolean(segment.interrupted)), 'data-start': String(segment.start_ms), 'data-end': String(segment.end_ms) } }, [
        el('span', { text: segment.speaker === 'candidate' ? 'You: ' : 'Interviewer: ', className: 'who' }),
        el('span', { text: segment.text, className: 'words' }),
      ]);
      if (segment.interrupted) line.append(el('span', { text: ' (interrupted)', className: 'muted' }));
      list.append(line);
    });
    (body.turns || []).forEach((turn) => {
      const cells = [String(turn.turn_index + 1), ms(turn.v2v_ms), ms(turn.stt_final_ms), ms(turn.turn_wait_ms), ms(turn.llm_ttft_ms), ms(turn.tts_ttfa_ms), ms(turn.engine_overhead_ms)];
      rows.append(el('tr', {}, cells.map((text) => el('td', { text }))));
    });
    feedback.loadScores(id);
  } catch (error) {
    formError(view.querySelector('.card'), error);
  }
}

// ---------------------------------------------------------------- wiring

/** The routes of these screens, for app.js's router. */
export function routes() {
  return {
    interview: { view: 'view-interview', signedIn: true, load: loadChooser },
    mic: { view: 'view-mic', signedIn: true, load: loadMicCheck },
    live: {
      view: 'view-live',
      signedIn: true,
      load: async () => {
        if (!current) {
          go('interview');
          return;
        }
        if (!call) await startCall();
      },
    },
    result: { view: 'view-result', signedIn: true, load: loadResult },
    skills: { view: 'view-skills', signedIn: true, load: feedback.loadSkills },
    usage: { view: 'view-usage', signedIn: true, load: feedback.loadUsage },
  };
}

/** Leaving the screens stops the microphone check; signing out also ends the call's media. */
export function leave(route) {
  if (route !== 'mic') stopMicCheck();
  if (route !== 'live' && call && !call.finished) stopCall();
}

export function reset() {
  stopMicCheck();
  stopCall();
  current = null;
}

/** Creates a drill interview focused on one skill and goes to the microphone check. */
async function focusedInterview(kind, skill) {
  const created = await api.request('POST', '/api/v1/interviews', { kind, focus_skill: skill });
  current = { id: created.id };
  go('mic');
}

export function setup({ navigate }) {
  go = navigate;
  feedback.setup({ focusedInterview });
  $('#interview-form').addEventListener('submit', createInterview);
  $('#mic-start').addEventListener('click', () => go('live'));
  $('#mic-headphones').addEventListener('change', () => {
    if (micCheck) loadMicCheck();
  });
  $('#mic-cancel').addEventListener('click', () => {
    stopMicCheck();
    go('interview');
  });
  $('#live-mute').addEventListener('click', toggleMute);
  $('#live-end').addEventListener('click', endInterview);
}
