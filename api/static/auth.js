// Sign-in and sign-up screens.

import * as api from './api.js';
import { $, busy, localError } from './ui.js';

/** Wires the two forms; `onSignedIn(welcome)` runs after a successful sign-in. */
export function setup({ onSignedIn }) {
  const signin = $('#signin-form');
  signin.addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = signin.elements.email.value.trim();
    const password = signin.elements.password.value;
    await busy(signin, async () => {
      if (!email || !password) throw localError('Enter your e-mail address and password.');
      await api.login(email, password);
      signin.reset();
      onSignedIn(null);
    });
  });

  const signup = $('#signup-form');
  signup.addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = signup.elements.email.value.trim();
    const password = signup.elements.password.value;
    const displayName = signup.elements.display_name.value.trim();
    const ageConfirmed = signup.elements.age_confirmed.checked;
    await busy(signup, async () => {
      if (!email) throw localError('Enter your e-mail address.');
      if (password.length < 10) throw localError('Choose a password of at least 10 characters.');
      if (!ageConfirmed) throw localError('You must be 16 or older to use InterviewCraft.');
      await api.register(email, password, true, displayName);
      // Registration does not sign in by itself: do it with the same credentials.
      await api.login(email, password);
      signup.reset();
      onSignedIn('Welcome! Your account has been created.');
    });
  });
}
