// The settings screen: consents and preferences, BYOK keys, display name, e-mail and password
// changes, the data export and account deletion.

import * as api from './api.js';
import { $, busy, el, formError, formatDate, formatDateTime, localError, saved } from './ui.js';

const PROVIDERS = [
  ['anthropic', 'Anthropic (Claude)'],
  ['deepgram', 'Deepgram'],
  ['elevenlabs', 'ElevenLabs'],
];

let currentEmail = null;

/** Loads everything the screen shows. */
export async function load(me) {
  const view = $('#view-settings');
  currentEmail = me ? me.email : currentEmail;
  $('#name-value').value = me && me.display_name ? me.display_name : '';
  await Promise.all([
    busy($('#consent-form'), async () => renderSettings(await api.request('GET', '/api/v1/settings'))),
    busy($('#key-form'), loadKeys),
  ]);
  view.dataset.loaded = 'true';
}

function renderSettings(settings) {
  const form = $('#consent-form');
  form.elements.digest_opt_in.checked = settings.digest_opt_in;
  form.elements.training_opt_in.checked = settings.training_opt_in;
  form.elements.skill_tracking.checked = settings.skill_tracking;
  form.elements.interviewer_voice.value = settings.interviewer_voice || 'default';
  form.elements.target_interview_date.value = settings.target_interview_date || '';
  for (const field of ['digest_opt_in', 'training_opt_in', 'skill_tracking']) {
    const slot = $(`[data-changed="${field}"]`, form);
    const when = settings[field + '_changed_at'];
    slot.textContent = when ? `Last changed ${formatDateTime(when)}.` : '';
  }
}

async function loadKeys() {
  const { keys } = await api.request('GET', '/api/v1/settings/keys');
  const byProvider = new Map(keys.map((key) => [key.provider, key]));
  const body = $('#keys-body');
  body.replaceChildren();
  for (const [provider, label] of PROVIDERS) {
    const key = byProvider.get(provider);
    const row = el('tr', { attrs: { 'data-provider': provider } });
    row.append(el('th', { text: label, attrs: { scope: 'row' } }));
    if (key) {
      const masked = el('td', { className: 'mono' });
      masked.append(
        el('span', { text: '•••• ', attrs: { 'aria-hidden': 'true' } }),
        el('span', { text: key.last_four, className: 'last-four', attrs: { 'aria-label': `ending in ${key.last_four}` } }),
      );
      row.append(masked, el('td', { text: formatDate(key.updated_at) }));
      const remove = el('button', {
        text: 'Delete',
        className: 'small',
        attrs: { type: 'button', 'aria-label': `Delete the ${label} key` },
      });
      remove.addEventListener('click', async () => {
        const form = $('#key-form');
        const ok = await busy(form, async () => {
          await api.request('DELETE', `/api/v1/settings/keys/${provider}`);
          await loadKeys();
        });
        if (ok) saved(form, `${label} key deleted.`);
      });
      const actions = el('td');
      actions.append(remove);
      row.append(actions);
    } else {
      row.append(el('td', { text: 'not set', className: 'muted' }), el('td'), el('td'));
    }
    body.append(row);
  }
}

/** Offers a Blob as a file download without leaving the page. */
function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { attrs: { href: url, download: filename } });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function filenameOf(response) {
  const header = response.headers.get('content-disposition') || '';
  const match = /filename="?([^";]+)"?/i.exec(header);
  return match ? match[1] : 'interviewcraft-export.json';
}

/** Wires the forms; `onAccountGone(message)` runs after the account was deleted. */
export function setup({ onProfileChanged, onAccountGone }) {
  const consent = $('#consent-form');
  consent.addEventListener('submit', async (event) => {
    event.preventDefault();
    const patch = {
      digest_opt_in: consent.elements.digest_opt_in.checked,
      training_opt_in: consent.elements.training_opt_in.checked,
      skill_tracking: consent.elements.skill_tracking.checked,
      interviewer_voice: consent.elements.interviewer_voice.value,
      // An empty date field clears the date.
      target_interview_date: consent.elements.target_interview_date.value || null,
    };
    const ok = await busy(consent, async () => renderSettings(await api.request('PATCH', '/api/v1/settings', patch)));
    if (ok) saved(consent, 'Saved.');
  });

  const keyForm = $('#key-form');
  keyForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const provider = keyForm.elements.provider.value;
    const input = keyForm.elements.api_key;
    const ok = await busy(keyForm, async () => {
      const value = input.value.trim();
      if (value.length < 20) throw localError('An API key has at least 20 characters.');
      const stored = await api.request('PUT', `/api/v1/settings/keys/${provider}`, { api_key: value });
      // The key is not kept in the page: only its last four characters come back.
      input.value = '';
      await loadKeys();
      return stored;
    });
    if (ok) saved(keyForm, 'Key saved.');
  });

  const nameForm = $('#name-form');
  nameForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const ok = await busy(nameForm, async () => {
      const me = await api.request('PATCH', '/api/v1/me', { display_name: nameForm.elements.display_name.value.trim() });
      onProfileChanged(me);
    });
    if (ok) saved(nameForm, 'Saved.');
  });

  const emailForm = $('#email-form');
  emailForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = emailForm.elements.email.value.trim();
    const password = emailForm.elements.current_password.value;
    const ok = await busy(emailForm, async () => {
      if (!email) throw localError('Enter the new e-mail address.');
      if (!password) throw localError('Enter your current password.');
      const me = await api.request('PATCH', '/api/v1/me', { email, current_password: password });
      currentEmail = me.email;
      emailForm.reset();
      onProfileChanged(me);
    });
    if (ok) saved(emailForm, `Your e-mail address is now ${currentEmail}.`);
  });

  const passwordForm = $('#password-form');
  passwordForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const current = passwordForm.elements.current_password.value;
    const next = passwordForm.elements.new_password.value;
    const repeat = passwordForm.elements.repeat.value;
    const ok = await busy(passwordForm, async () => {
      if (!current) throw localError('Enter your current password.');
      if (next.length < 10) throw localError('Choose a new password of at least 10 characters.');
      if (next !== repeat) throw localError('The two new passwords differ.');
      await api.request('PATCH', '/api/v1/me', { new_password: next, current_password: current });
      passwordForm.reset();
      // The change revoked every session, this one's cookie included: sign in again at once.
      if (currentEmail) await api.login(currentEmail, next);
    });
    if (ok) saved(passwordForm, 'Password changed. Other sessions were signed out.');
  });

  const exportButton = $('#export-button');
  exportButton.addEventListener('click', async () => {
    const card = exportButton.closest('.card');
    let size = 0;
    const ok = await busy(card, async () => {
      const response = await api.request('GET', '/api/v1/privacy/export', undefined, { raw: true });
      const blob = await response.blob();
      size = blob.size;
      download(blob, filenameOf(response));
    });
    if (ok) saved(card, `Export ready (${Math.max(1, Math.round(size / 1024))} KB).`);
  });

  const deleteForm = $('#delete-form');
  deleteForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const password = deleteForm.elements.password.value;
    await busy(deleteForm, async () => {
      if (!password) throw localError('Enter your password to confirm.');
      if (!deleteForm.elements.confirm.checked) throw localError('Tick the box to confirm that you want to delete your account.');
      await api.request('DELETE', '/api/v1/me', { password });
      deleteForm.reset();
      onAccountGone('Your account and all its data have been deleted.');
    });
  });
}

/** Clears every field (on sign-out), so nothing of one account stays in the page. */
export function reset() {
  for (const id of ['#consent-form', '#key-form', '#name-form', '#email-form', '#password-form', '#delete-form']) {
    $(id).reset();
    formError($(id), null);
    saved($(id), '');
  }
  $('#keys-body').replaceChildren();
  delete $('#view-settings').dataset.loaded;
  currentEmail = null;
}
