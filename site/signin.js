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
  link.href = choice.href;
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
  if (result.ok) { location.replace("/"); return; }
  announce("");
  const field = (result.data.error || {}).field;
  if (field === "user_id") return fieldError(userField, $("guest-user-error"), { result });
  if (field === "password") return fieldError(passwordField, $("guest-password-error"), { result });
  // Not one field's fault (wrong password, too many attempts, Alma down): say so above the
  // fields and start again from the user name.
  localizeError($("guest-error"), result);
  userField.focus();
}
