// The profile screen: GET /api/v1/me, the e-mail confirmation notice (when the server mails
// links and the address is not confirmed yet), and the privacy-policy notices with their accept
// buttons.

import * as api from './api.js';
import { $, busy, el, formError, formatDate } from './ui.js';

// Versions accepted in this page (the profile does not say whether an upcoming version was
// accepted, only whether the current one was).
const acceptedHere = new Set();

/** Loads the profile and fills the screen; returns the profile for other screens. */
export async function load() {
  const view = $('#view-profile');
  formError(view, null);
  let me;
  try {
    me = await api.request('GET', '/api/v1/me');
  } catch (error) {
    formError(view, error);
    return null;
  }
  render(me);
  return me;
}

function render(me) {
  $('#profile-email').textContent = me.email;
  $('#profile-name').textContent = me.display_name || '—';
  $('#profile-role').textContent = me.role;
  $('#profile-created').textContent = formatDate(me.created_at);
  $('#profile-age').textContent = `16 or older (confirmed ${formatDate(me.age_confirmed_at)})`;
  const policy = me.policy || {};
  $('#profile-policy').textContent = policy.current_version
    ? `Version ${policy.current_version}` + (policy.accepted_current ? ', accepted' : ', not yet accepted')
    : 'None in effect';

  const verification = $('#verification-notice');
  verification.replaceChildren();
  if (me.email_verification_required) verification.append(verificationNotice(me.email));

  const notices = $('#policy-notices');
  notices.replaceChildren();
  if (policy.current_version && !policy.accepted_current && !acceptedHere.has(policy.current_version)) {
    notices.append(
      notice(
        policy.current_version,
        'The privacy policy has changed',
        `Version ${policy.current_version} is in effect. Please read it and accept it.`,
      ),
    );
  }
  for (const next of policy.upcoming || []) {
    notices.append(
      notice(
        next.version,
        `Upcoming privacy policy: ${next.title}`,
        `Version ${next.version} takes effect on ${formatDate(next.effective_at)}. ${next.summary}`,
      ),
    );
  }
}

/** Asks to confirm the address, with a button that mails a new link. */
function verificationNotice(email) {
  const title = 'Confirm your e-mail address';
  const box = el('section', { className: 'card verification-notice', attrs: { 'aria-label': title } });
  box.append(
    el('h2', { text: title }),
    el('p', {
      text:
        `We sent a link to ${email}. Your free interviews start once you open it ` +
        '(interviews on your own API keys work already).',
    }),
    el('p', { className: 'form-error', attrs: { role: 'alert' } }),
  );
  $('.form-error', box).hidden = true;
  const send = el('button', { text: 'Send the link again', attrs: { type: 'button' } });
  const done = el('span', { className: 'saved', attrs: { role: 'status', 'aria-live': 'polite' } });
  send.addEventListener('click', async () => {
    const ok = await busy(box, () => api.request('POST', '/api/v1/auth/verification'));
    if (ok) done.textContent = 'A new link is on its way.';
  });
  box.append(el('div', { className: 'actions' }, [send, done]));
  return box;
}

function notice(version, title, text) {
  const box = el('section', {
    className: 'card policy-notice',
    attrs: { 'aria-label': title, 'data-policy-version': version },
  });
  const actions = el('div', { className: 'actions' });
  const read = el('a', { text: 'Read the policy', attrs: { href: '#/policy' } });
  const done = el('span', { className: 'saved', attrs: { role: 'status', 'aria-live': 'polite' } });
  box.append(el('h2', { text: title }), el('p', { text }), el('p', { className: 'form-error', attrs: { role: 'alert' } }));
  $('.form-error', box).hidden = true;
  if (acceptedHere.has(version)) {
    done.textContent = `You accepted version ${version}.`;
    actions.append(read, done);
  } else {
    const accept = el('button', { text: `Accept version ${version}`, className: 'primary', attrs: { type: 'button' } });
    accept.addEventListener('click', async () => {
      const ok = await busy(box, () => api.request('POST', '/api/v1/policy/accept', { version }));
      if (ok) {
        acceptedHere.add(version);
        accept.remove();
        done.textContent = `You accepted version ${version}.`;
      }
    });
    actions.append(accept, read, done);
  }
  box.append(actions);
  return box;
}

/** Forgets what was accepted in this page (on sign-out). */
export function reset() {
  acceptedHere.clear();
}
