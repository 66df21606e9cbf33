/* feedback-monitor's web inbox: keyboard first. No inline script anywhere (the CSP forbids
   it); every action is a plain form, and a key only clicks its button or focuses its field,
   so the keyboard and the mouse do exactly the same thing. */
(function () {
  "use strict";

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("li.case")); }

  function current() { return document.querySelector("li.case.current"); }

  /* The page scrolls to the row a key moved to, never to the first one on load: on a phone
     the list starts below the views and filters, and the page must open at its top. */
  function move(step, scroll) {
    var all = rows();
    if (!all.length) { return; }
    var at = all.indexOf(current());
    var next = all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))];
    all.forEach(function (r) { r.classList.remove("current"); r.removeAttribute("aria-current"); });
    next.classList.add("current");
    next.setAttribute("aria-current", "true");
    next.querySelector("a.title").focus({preventScroll: true});
    if (scroll) { next.scrollIntoView({block: "nearest"}); }
  }

  /* In the inbox an action applies to the selected cases, or to the current one when none is
     selected. */
  function pickCurrentIfNone() {
    var picked = document.querySelectorAll("input[name=case]:checked");
    var row = current();
    if (!picked.length && row) { row.querySelector("input[name=case]").checked = true; }
  }

  function buttonFor(key) {
    return document.querySelector("button[data-key='" + key + "'], a[data-key='" + key + "']");
  }

  function copy(id) {
    var box = document.getElementById(id);
    if (!box) { return; }
    var done = function () { announce("Template copied"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(box.value).then(done, function () { box.select(); document.execCommand("copy"); done(); });
    } else { box.select(); document.execCommand("copy"); done(); }
    var reply = document.getElementById("reply-text");
    if (reply && !reply.value) { reply.value = box.value; }
    var used = document.getElementById("reply-template");  // the won-back figures count by it
    if (used && box.dataset.id) { used.value = box.dataset.id; }
    if (reply && reply.value) { keepDraft(reply, false); }
  }

  function announce(text) {
    var live = document.getElementById("announce");
    if (!live) {
      live = document.createElement("p");
      live.id = "announce"; live.className = "toast"; live.setAttribute("role", "status");
      document.body.appendChild(live);
    }
    live.textContent = text;
  }

  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key === "Escape") {
      if (typing(el)) { el.blur(); }
      return;
    }
    if (typing(el)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        var form = el.form;
        var submit = form && form.querySelector("button[data-submit-on-ctrl-enter], button:not([type=button])");
        if (submit) { event.preventDefault(); submit.click(); }
      } else if (event.key === "Enter" && el.tagName === "SELECT" && el.id) {
        var go = document.querySelector("button[data-focus='" + el.id + "']");
        if (go) { event.preventDefault(); pickCurrentIfNone(); go.click(); }
      } else if (event.key === "Enter" && el.tagName === "INPUT" && el.id) {
        var send = document.querySelector("button[data-focus='" + el.id + "']");
        if (send) { event.preventDefault(); pickCurrentIfNone(); send.click(); }
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "j" || key === "k") { event.preventDefault(); move(key === "j" ? 1 : -1, true); return; }
    if (key === "Enter" && current()) { event.preventDefault(); current().querySelector("a.title").click(); return; }
    if (key === "x" && current()) {
      event.preventDefault();
      var box = current().querySelector("input[name=case]");
      box.checked = !box.checked;
      return;
    }
    if (key === "/") {
      var search = document.getElementById("q");
      event.preventDefault();
      if (search) { search.focus(); search.select(); } else { window.location.href = "/?focus=search"; }
      return;
    }
    if (key === "?") {
      var help = document.getElementById("keys");
      event.preventDefault();
      if (help) { if (help.open) { help.close(); } else { help.showModal(); } }
      return;
    }
    if (/^[1-9]$/.test(key) && document.getElementById("tpl-" + key)) {
      event.preventDefault(); copy("tpl-" + key); return;
    }
    var button = buttonFor(key);
    if (!button) { return; }
    event.preventDefault();
    if (button.dataset.focus) {
      var field = document.getElementById(button.dataset.focus);
      if (field) { field.focus(); return; }
    }
    pickCurrentIfNone();
    button.click();
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-copy]");
    if (target) { copy(target.dataset.copy); }
  });

  /* "Ana is replying": the presence poll says what this page is doing. */
  function activity(value) {
    var field = document.getElementById("activity");
    if (field) { field.value = value; }
  }
  document.addEventListener("focusin", function (event) {
    if (event.target.dataset && event.target.dataset.activity) { activity(event.target.dataset.activity); }
  });
  document.addEventListener("input", function (event) {
    if (event.target.dataset && event.target.dataset.activity) { activity(event.target.dataset.activity); }
  });

  /* Drafts: what is typed in a case page's reply or note box is kept in this browser, per
     person and case, until the server has recorded it (the page it then shows says so:
     data-recorded), so an ended session or someone else's change never loses it. */
  function draftKey(box) {
    var page = box.closest("article.casepage");
    return page && page.dataset.user ?
      ["fm-draft", page.dataset.user, page.dataset["case"], box.dataset.draft].join(":") : null;
  }

  function keptDraft(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  function keepDraft(box, sent) {
    var key = draftKey(box);
    var used = box.dataset.draft === "reply" ? document.getElementById("reply-template") : null;
    if (!key) { return; }
    try {
      if (!box.value.trim()) { localStorage.removeItem(key); return; }
      localStorage.setItem(key, JSON.stringify({text: box.value, sent: sent,
                                                template: used ? used.value : ""}));
    } catch (e) { /* storage full or turned off: the form still sends what is typed */ }
  }

  function restoreDrafts() {
    var recorded = document.querySelector("[data-recorded]");
    document.querySelectorAll("article.casepage textarea[data-draft]").forEach(function (box) {
      var key = draftKey(box);
      var kept = key ? keptDraft(key) : null;
      if (kept && kept.sent && recorded && recorded.dataset.recorded === box.dataset.draft) {
        localStorage.removeItem(key);  // the server has it now
        return;
      }
      if (box.value.trim()) { keepDraft(box, false); return; }  // sent back with a refusal
      if (!kept || !kept.text) { return; }
      box.value = kept.text;
      var used = document.getElementById("reply-template");
      if (box.dataset.draft === "reply" && used && !used.value) { used.value = kept.template || ""; }
      var holder = box.closest("[hidden]");
      if (holder) { holder.hidden = false; }
    });
  }

  document.addEventListener("input", function (event) {
    if (event.target.dataset && event.target.dataset.draft) { keepDraft(event.target, false); }
  });
  document.addEventListener("submit", function (event) {
    var box = event.target.querySelector("textarea[data-draft]");
    if (box) { keepDraft(box, true); }
  });

  /* The presence poll is the page's pulse: a 401 means the session ended meanwhile. */
  document.addEventListener("htmx:afterRequest", function (event) {
    var warning = document.getElementById("session-ended");
    if (warning && event.detail.elt && event.detail.elt.id === "presence") {
      warning.hidden = event.detail.xhr.status !== 401;
    }
  });

  window.addEventListener("pagehide", function () {
    var page = document.querySelector("article.casepage");
    var csrf = document.body.dataset.csrf;
    if (page && csrf && navigator.sendBeacon) {
      var form = new FormData();
      form.append("csrf", csrf);
      navigator.sendBeacon("/cases/" + page.dataset.case + "/leave", form);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (rows().length && !typing(document.activeElement)) { move(0, false); }
    restoreDrafts();
    if (/[?&]focus=search/.test(window.location.search)) {
      var search = document.getElementById("q");
      if (search) { search.focus(); }
    }
  });
})();
