// The privacy policy screen (public, from GET /api/v1/policy) and a small, safe renderer for
// the policy's Markdown subset: headings, lists, paragraphs and **bold**, built as DOM nodes.

import * as api from './api.js';
import { $, el, formError, formatDate } from './ui.js';

/** Appends `text` to `parent`, turning **bold** spans into <strong>. */
function inline(parent, text) {
  text.split(/(\*\*[^*]+\*\*)/).forEach((part) => {
    if (part.startsWith('**') && part.endsWith('**') && part.length > 4) {
      parent.append(el('strong', { text: part.slice(2, -2) }));
    } else if (part) {
      parent.append(document.createTextNode(part));
    }
  });
}

/** Renders the Markdown subset into a fragment (nothing from the text becomes HTML). */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  let list = null;
  let block = null; // the <p> or <li> that continuation lines extend
  for (const raw of source.split('\n')) {
    const line = raw.trimEnd();
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (!line.trim()) {
      list = null;
      block = null;
    } else if (heading) {
      list = null;
      block = null;
      // The page's h1 is the screen title, so the policy's headings start at h2.
      const node = el('h' + Math.min(heading[1].length + 1, 4));
      inline(node, heading[2]);
      fragment.append(node);
    } else if (item) {
      if (list === null) {
        list = el('ul');
        fragment.append(list);
      }
      block = el('li');
      inline(block, item[1]);
      list.append(block);
    } else if (block !== null) {
      inline(block, ' ' + line.trim());
    } else {
      block = el('p');
      inline(block, line.trim());
      fragment.append(block);
    }
  }
  return fragment;
}

/** Loads and shows the policy in force and any announced version. */
export async function load() {
  const view = $('#view-policy');
  const body = $('#policy-body');
  const meta = $('#policy-meta');
  const upcoming = $('#policy-upcoming');
  formError(view, null);
  try {
    const policy = await api.request('GET', '/api/v1/policy');
    body.replaceChildren();
    upcoming.replaceChildren();
    if (policy.current) {
      const version = policy.current.version;
      meta.textContent = `Version ${version.version}, in effect since ${formatDate(version.effective_at)}.`;
      body.append(renderMarkdown(policy.current.body));
    } else {
      meta.textContent = 'No policy is in effect yet.';
    }
    for (const next of policy.upcoming || []) {
      const section = el('section', { className: 'upcoming' });
      section.append(
        el('h2', {
          text: `Upcoming: version ${next.version.version}, in effect from ${formatDate(next.version.effective_at)}`,
        }),
        el('p', { text: next.version.summary }),
      );
      section.append(renderMarkdown(next.body));
      upcoming.append(section);
    }
  } catch (error) {
    formError(view, error);
  }
}
