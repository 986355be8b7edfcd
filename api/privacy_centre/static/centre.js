// What every page of the privacy centre shares: its configuration (the JSON data block the
// server wrote: language, messages, the addresses of the pages), the message catalogue,
// GraphQL over fetch with the session cookie, and the sign-out button.
import { LOGOUT } from "./operations.js";

const config = JSON.parse(document.getElementById("custos-config").textContent);

export const lang = config.lang;

/** For dates: the variant of the page language that the browser prefers, if any (en-GB
 * writes 1 December 2026, en-US December 1, 2026); else the language itself. */
export const locale =
  (navigator.languages || []).find((tag) => tag.split("-")[0].toLowerCase() === lang) || lang;

/** The catalogue's message `key`, with each {name} replaced by params[name]. */
export function t(key, params = {}) {
  let message = config.messages[key];
  if (message === undefined) {
    throw new Error(`catalogue-key-missing:${key}`);
  }
  for (const [name, value] of Object.entries(params)) {
    message = message.replaceAll(`{${name}}`, value);
  }
  return message;
}

/** Whether the catalogue has `key` (optional messages, such as a purpose's name). */
export function has(key) {
  return Object.hasOwn(config.messages, key);
}

/** The address of another page, with a query. */
export function pageUrl(name, query = {}) {
  const url = new URL(config.pages[name], window.location.href);
  for (const [key, value] of Object.entries(query)) {
    url.searchParams.set(key, value);
  }
  return url.origin === window.location.origin ? url.pathname + url.search : url.href;
}

/** An error a page shows: a catalogue key, and the field it is about (if any). */
export class PageError extends Error {
  constructor(key, field = null) {
    super(key);
    this.key = key;
    this.field = field;
  }
}

/** A value the API refused before anything ran (NUL, control characters, far too long:
 * a top-level VALIDATION error naming its argument): `fields` holds { field, code:
 * "REFUSED" } per argument, its path without the `input.` of an input object
 * (`address.line1`, `changes.phone`), and `field` the first, so a form marks them. */
export class RefusedFields extends PageError {
  constructor(fields) {
    super("form.check", fields[0].field);
    this.fields = fields;
  }
}

const TOP_LEVEL = new Set(["RATE_LIMITED", "UNAUTHENTICATED"]);

function refusedFields(errors) {
  const fields = [];
  for (const error of errors) {
    const extensions = error.extensions || {};
    if (extensions.code !== "VALIDATION" || typeof extensions.field !== "string") {
      return null;
    }
    fields.push({ field: extensions.field.replace(/^input\./, ""), code: "REFUSED" });
  }
  return fields.length > 0 ? fields : null;
}

/** Send one operation to /graphql on this site, the session cookie with it; the `data`
 * of the answer, RefusedFields when the API refused arguments by name, or a PageError
 * (network, rate limit, sign-in needed, anything else). */
export async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new PageError("error.network");
  }
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new PageError("error.unexpected");
  }
  const errors = answer.errors || [];
  const refused = refusedFields(errors);
  if (refused !== null) {
    throw new RefusedFields(refused);
  }
  if (errors.length > 0) {
    const code = errors[0].extensions && errors[0].extensions.code;
    throw new PageError(TOP_LEVEL.has(code) ? `error.${code}` : "error.unexpected");
  }
  return answer.data;
}

/** The catalogue key for a typed error's code. */
export function codeMessage(code) {
  return has(`error.${code}`) ? `error.${code}` : "error.unexpected";
}

/** A date and time as the reader writes it: the page language, the browser variant. */
export function formatDate(iso, withTime = false) {
  const options = withTime
    ? { dateStyle: "long", timeStyle: "short" }
    : { dateStyle: "long" };
  return new Intl.DateTimeFormat(locale, options).format(new Date(iso));
}

/** Send the reader to sign in (and back to this page afterwards). */
export function signInFirst() {
  window.location.assign(pageUrl("sign-in", { next: document.body.dataset.page }));
}

/** Show `key` in the page's alert region (or clear it with null). */
export function showAlert(element, key) {
  element.textContent = key === null ? "" : t(key);
}

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", async () => {
    signOut.disabled = true;
    try {
      await gql(LOGOUT);
    } catch {
      // Signed out already, or the server is away: the sign-in page says which.
    }
    window.location.assign(pageUrl("sign-in", { "signed-out": "1" }));
  });
}
