/* The sign-in choices to draw, in order, from GET /api/session's 401 body. The server lists
   them in `signin`: {method, kind: "link", href} (href used as is), {method, kind: "notice"}
   or {method, kind: "form", action}. A server without `signin` sends only `methods` and
   `links`; the same list is built from those. Pure: the page passes its own URL, which the
   links and forms are checked against. Loaded by the pages as a plain script (the global
   SigninChoices) and by the tests with require(). */
"use strict";

(function (root) {
  const KINDS = ["link", "notice", "form"];
  // A method name goes into element ids and translation keys.
  const METHOD = /^[a-z][a-z0-9_]*$/;

  /* The choices the page can draw: each method once, kinds it knows, links that stay on the
     web (http or https), forms that post to this site. Anything else is skipped. */
  function signinChoices(body, pageUrl) {
    const listed = Array.isArray(body.signin) ? body.signin : fromMethods(body.methods, body.links);
    const seen = new Set();
    const choices = [];
    for (const entry of listed) {
      const choice = checked(entry, pageUrl);
      if (!choice || seen.has(choice.method)) continue;
      seen.add(choice.method);
      choices.push(choice);
    }
    return choices;
  }

  function checked(entry, pageUrl) {
    if (!entry || typeof entry !== "object") return null;
    const { method, kind } = entry;
    if (typeof method !== "string" || !METHOD.test(method) || !KINDS.includes(kind)) return null;
    if (kind === "notice") return { method, kind };
    if (kind === "link") {
      const href = webAddress(entry.href, pageUrl);
      return href === null ? null : { method, kind, href: entry.href };
    }
    const action = sameSitePath(entry.action, pageUrl);
    return action === null ? null : { method, kind, action };
  }

  function webAddress(href, pageUrl) {
    if (typeof href !== "string" || !href) return null;
    try {
      const url = new URL(href, pageUrl);
      return url.protocol === "https:" || url.protocol === "http:" ? url : null;
    } catch (error) {
      return null;
    }
  }

  // The guest form is posted by the page's own API client, with its session cookie: never
  // anywhere but this site.
  function sameSitePath(action, pageUrl) {
    const url = webAddress(action, pageUrl);
    if (url === null || url.origin !== new URL(pageUrl).origin) return null;
    // From the path alone, leading slashes collapsed: "/.//host/x" resolves to the path
    // "//host/x", which as an action would post to another host.
    return "/" + url.pathname.replace(/^\/+/, "") + url.search;
  }

  /* What a server without `signin` offers, in the order the page has always shown it. The
     single sign-on button goes where the library's web server starts SSO: our own /auth/sso
     (protected by it, and told where to come back), or the SSO's login page that comes back
     there. */
  function fromMethods(methods, links) {
    const offered = Array.isArray(methods) ? methods : [];
    const to = links && typeof links === "object" ? links : {};
    const list = [];
    if (offered.includes("sso")) {
      const sso = typeof to.sso === "string" && to.sso ? to.sso : "/auth/sso";
      list.push({ method: "sso", kind: "link", href: sso.startsWith("/auth/sso") ? `${sso}?next=/` : sso });
    }
    if (offered.includes("cas")) list.push({ method: "cas", kind: "link", href: "/auth/cas?next=/" });
    if (offered.includes("primo")) list.push({ method: "primo", kind: "notice" });
    if (offered.includes("alma")) list.push({ method: "alma", kind: "form", action: to.alma || "/auth/alma" });
    return list;
  }

  const api = { signinChoices };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.SigninChoices = api;
})(this);
