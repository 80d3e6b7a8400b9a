// Small DOM helpers shared by the screens: views, notices, form errors and busy states.
// Text from the server is always inserted as text (textContent), never as HTML.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Creates an element with text and attributes. */
export function el(tag, { text, className, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  if (attrs) Object.entries(attrs).forEach(([name, value]) => node.setAttribute(name, value));
  children.forEach((child) => node.append(child));
  return node;
}

/** Shows one `<section class="view">` and hides the rest; moves focus to its heading. */
export function showView(id, { focus = true } = {}) {
  $$('main > .view').forEach((view) => {
    view.hidden = view.id !== id;
  });
  document.body.dataset.view = id.replace(/^view-/, '');
  $$('[data-nav]').forEach((link) => {
    if ('view-' + link.dataset.nav === id) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  });
  const heading = $('#' + id + ' h1');
  if (focus && heading) heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

/** A page-level message (e.g. "Signed out."); `kind` is 'info', 'success' or 'error'. */
export function notify(message, kind = 'info') {
  const box = $('#notice');
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = !message;
}

export function clearNotice() {
  notify('');
}

/** Formats an error for people: the server's message and, for reference, its code. */
export function describeError(error) {
  if (error && error.code && error.message) {
    const message = error.message.charAt(0).toUpperCase() + error.message.slice(1);
    return error.status === 0 || error.local ? message : `${message} (${error.code})`;
  }
  return 'Something went wrong. Please try again.';
}

/** Shows (or clears with null) the error box of a form or card. */
export function formError(container, error) {
  const box = $('.form-error', container);
  if (!box) return;
  if (error === null || error === undefined) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.textContent = typeof error === 'string' ? error : describeError(error);
  box.hidden = false;
}

/** Shows a short confirmation next to a form's buttons. */
export function saved(container, message) {
  const slot = $('.saved', container);
  if (slot) slot.textContent = message;
}

/**
 * Runs `action` for a form or button container: disables its buttons meanwhile, clears and
 * shows its error box. Returns whether the action succeeded.
 */
export async function busy(container, action) {
  const buttons = $$('button', container);
  buttons.forEach((button) => {
    button.disabled = true;
  });
  container.setAttribute('aria-busy', 'true');
  formError(container, null);
  saved(container, '');
  try {
    await action();
    return true;
  } catch (error) {
    formError(container, error);
    return false;
  } finally {
    buttons.forEach((button) => {
      button.disabled = false;
    });
    container.removeAttribute('aria-busy');
  }
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatDate(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : dateFormat.format(date);
}

export function formatDateTime(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : dateTimeFormat.format(date);
}

/** A validation error raised in the page before anything is sent. */
export function localError(message) {
  return { code: 'invalid_input', message, status: 422, local: true };
}
