/* The fees page's sign-in section, drawn from what GET /api/session says is offered (see
   signin_choices.js), in the server's order: links and notices as a list, the guest account
   form from its <template> in index.html. Uses app.js's $, announce and field helpers. */
"use strict";

function showSignIn(body) {
  const box = $("signin-choices");
  box.replaceChildren();
  for (const choice of SigninChoices.signinChoices(body, location.href)) {
    const drawn = choice.kind === "form" ? signinForm(choice) : signinItem(choice);
    if (!drawn) continue;
    if (drawn.tagName === "LI") methodList(box).appendChild(drawn); else box.appendChild(drawn);
  }
  $("signin").hidden = false;
}

/* Links and notices next to each other share one list, as they always have. */
function methodList(box) {
  const last = box.lastElementChild;
  if (last && last.tagName === "UL") return last;
  const list = document.createElement("ul");
  list.className = "methods";
  return box.appendChild(list);
}

/* A method we have no words for is not shown: a button reading "signin.xyz" helps no one. */
function hasWords(key) { return key in I18N.fallback; }

function signinItem(choice) {
  const key = `signin.${choice.method}`;
  if (!hasWords(key)) return null;
  const item = document.createElement("li");
  item.id = `method-${choice.method}`;
  if (choice.kind === "notice") {
    const notice = document.createElement("p");
    localize(notice, key);
    item.appendChild(notice);
    return item;
  }
  const link = document.createElement("a");
  link.className = "button primary";
  link.href = ownPath(choice.href);
  localize(link, key);
  item.appendChild(link);
  if (hasWords(`${key}.help`)) {
    const help = document.createElement("p");
    help.className = "hint";
    help.id = `${choice.method}-help`;
    localize(help, `${key}.help`);
    link.setAttribute("aria-describedby", help.id);
    item.appendChild(help);
  }
  return item;
}

function signinForm(choice) {
  const template = $(`signin-form-${choice.method}`);
  if (!template) return null;
  const content = template.content.cloneNode(true);
  translatePage(content);
  const form = content.querySelector("form");
  // Sent by the page as JSON; were the script to fail, a post here still keeps the password
  // out of the address bar.
  form.method = "post";
  form.setAttribute("action", choice.action);
  form.addEventListener("submit", (event) => guestSignIn(event, choice.action));
  return form;
}

async function guestSignIn(event, action) {
  event.preventDefault();
  const userField = $("guest-user"), passwordField = $("guest-password");
  clearFieldError(userField, $("guest-user-error"));
  clearFieldError(passwordField, $("guest-password-error"));
  plainText($("guest-error"), "");
  if (!userField.value.trim()) return fieldError(userField, $("guest-user-error"), { key: "error.invalid_user_id" });
  if (!passwordField.value) return fieldError(passwordField, $("guest-password-error"), { key: "error.invalid_password" });
  announce("signin.working");
  const result = await apiCall("POST", action, {
    user_id: userField.value.trim(), password: passwordField.value,
  });
  passwordField.value = "";
  if (result.ok) { location.replace(ownPath("/")); return; }
  announce("");
  const field = (result.data.error || {}).field;
  if (field === "user_id") return fieldError(userField, $("guest-user-error"), { result });
  if (field === "password") return fieldError(passwordField, $("guest-password-error"), { result });
  // Not one field's fault (wrong password, too many attempts, Alma down): say so above the
  // fields and start again from the user name.
  localizeError($("guest-error"), result);
  userField.focus();
}

/* Sign out. A CAS session also goes through the CAS server's logout (the server says where,
   as `next`): otherwise the CAS session outlives ours, and the next person at a shared
   computer who picks CAS would be signed in as this patron. */
async function signOut() {
  const result = await apiCall("POST", "/auth/logout", {});
  const next = result.ok && typeof result.data.next === "string" ? result.data.next : "";
  location.replace(/^https?:\/\//.test(next) ? next : ownPath("/"));
}

/* A Primo "Pay fines" link for another patron arrived while one is signed in: the server
   kept that sign-in waiting (/auth/primo/switch) and the page asks before switching. True
   while the question is on screen, so the signed-in patron's fees are not shown under it. */
async function offerSwitch() {
  if (new URLSearchParams(location.search).get("switch") !== "primo") return false;
  const result = await apiCall("GET", "/auth/primo/switch");
  if (!result.ok) return false;
  const { current, next } = result.data;
  localize($("switch-question"), "switch.question", { current: current.name, next: next.name });
  localize($("switch-continue"), "switch.continue", { name: next.name });
  localize($("switch-stay"), "switch.stay", { name: current.name });
  $("switch-continue").addEventListener("click", () => answerSwitch(true));
  $("switch-stay").addEventListener("click", () => answerSwitch(false));
  $("switch").hidden = false;
  $("switch-heading").focus();
  return true;
}

async function answerSwitch(yes) {
  const result = await apiCall("POST", "/auth/primo/switch", { continue: yes });
  if (!result.ok && result.status !== 404) return localizeError($("alert"), result);
  location.replace(ownPath("/"));
}
