// Entry point: the hash router, the session's effect on the layout, and start-up.
//
// Screens (each a <section class="view"> of index.html):
//   #/signin  #/signup  #/policy          signed out (the policy also when signed in)
//   #/profile #/settings                  signed in
//   #/interview #/mic #/live #/result     signed in: the interview screens (interview.js)

import * as api from './api.js';
import * as auth from './auth.js';
import * as interview from './interview.js';
import * as policy from './policy.js';
import * as profile from './profile.js';
import * as settings from './settings.js';
import { $, clearNotice, notify, showView } from './ui.js';

let me = null;

// route → { view, signedIn: true (needs a session) | false (only signed out) | null (any), load }
const ROUTES = {
  signin: { view: 'view-signin', signedIn: false },
  signup: { view: 'view-signup', signedIn: false },
  policy: { view: 'view-policy', signedIn: null, load: () => policy.load() },
  profile: {
    view: 'view-profile',
    signedIn: true,
    load: async () => {
      me = (await profile.load()) || me;
    },
  },
  settings: {
    view: 'view-settings',
    signedIn: true,
    load: async () => {
      if (me === null) me = await profile.load();
      await settings.load(me);
    },
  },
  ...interview.routes(),
};

function currentRoute() {
  return location.hash.replace(/^#\/?/, '').split('?')[0];
}

// A message to show once the next screen is up (navigation clears the previous one).
let pendingNotice = null;

function go(route, message = null, kind = 'info') {
  if (message) pendingNotice = { message, kind };
  if (currentRoute() === route) render();
  else location.hash = '#/' + route;
}

let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  const signedIn = api.isSignedIn();
  let name = currentRoute();
  let route = Object.hasOwn(ROUTES, name) ? ROUTES[name] : undefined;
  if (!route || (route.signedIn === true && !signedIn) || (route.signedIn === false && signedIn)) {
    name = signedIn ? 'profile' : 'signin';
    if (currentRoute() !== name) {
      history.replaceState(null, '', '#/' + name);
    }
    route = ROUTES[name];
  }
  interview.leave(name);
  showView(route.view);
  if (pendingNotice) {
    notify(pendingNotice.message, pendingNotice.kind);
    pendingNotice = null;
  }
  document.body.dataset.ready = 'false';
  if (route.load) await route.load();
  // Only the latest navigation marks the page ready (tests and assistive tech wait on it).
  if (seq === renderSeq) document.body.dataset.ready = 'true';
}

function applySession(signedIn) {
  document.body.dataset.session = signedIn ? 'signed-in' : 'signed-out';
  $('#nav').hidden = !signedIn;
}

api.onSessionChange((signedIn, reason) => {
  applySession(signedIn);
  if (!signedIn) {
    me = null;
    profile.reset();
    settings.reset();
    interview.reset();
    if (reason) pendingNotice = { message: reason, kind: 'error' };
    render();
  }
});

function signedIn(message) {
  me = null;
  clearNotice();
  go('profile', message, 'success');
}

auth.setup({ onSignedIn: signedIn });
interview.setup({ navigate: (route) => go(route) });
settings.setup({
  onProfileChanged: (updated) => {
    me = updated;
  },
  onAccountGone: (message) => {
    pendingNotice = { message, kind: 'success' };
    api.endSession(null);
  },
});

$('#sign-out').addEventListener('click', async () => {
  pendingNotice = { message: 'You have signed out.', kind: 'info' };
  await api.logout();
});

// The screen the policy was opened from (the back button returns there, never off the site).
let previousRoute = null;

$('#policy-back').addEventListener('click', () => {
  if (previousRoute && previousRoute !== 'policy' && Object.hasOwn(ROUTES, previousRoute)) history.back();
  else go(api.isSignedIn() ? 'profile' : 'signin');
});

window.addEventListener('hashchange', (event) => {
  // In-page anchors (the skip link's #main) are not screens.
  if (location.hash && !location.hash.startsWith('#/')) return;
  previousRoute = new URL(event.oldURL).hash.replace(/^#\/?/, '') || null;
  if (!pendingNotice) clearNotice();
  render();
});

async function start() {
  try {
    await api.restore();
  } catch (error) {
    notify(error.message, 'error');
  }
  applySession(api.isSignedIn());
  await render();
}

start();
