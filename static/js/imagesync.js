/* imagesync: small enhancements on top of server-rendered pages.
 *
 * Served from this site and loaded with a nonce: the Content-Security-Policy allows no inline
 * script or handler, so every behaviour is wired here from data-* attributes. Each page works
 * without it; this file only saves reloads and typing.
 */
(function () {
  "use strict";

  var body = document.body;
  var POLL_MS = 3000;
  var MAX_IDS = 100;

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region) return;
    // Clearing first makes screen readers repeat an identical message.
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  // -- confirmation before cancel / delete ------------------------------------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // -- copy buttons: <button data-copy="ID"> copies the text of #ID -----------------------------
  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function flash(button, text) {
    if (!button.dataset.original) button.dataset.original = button.textContent;
    button.textContent = text;
    window.clearTimeout(button.flashTimer);
    button.flashTimer = window.setTimeout(function () {
      button.textContent = button.dataset.original;
    }, 2000);
    announce(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    var text = source.textContent.trim();
    function fallback() {
      // No clipboard API (plain http, old browser, permission refused): select the text so
      // that Ctrl+C copies it, and try the legacy command.
      selectText(source);
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      flash(button, copied ? body.dataset.i18nCopied : body.dataset.i18nCopyFailed);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () {
        flash(button, body.dataset.i18nCopied);
      }, fallback);
    } else {
      fallback();
    }
  });

  // -- submit form: destination derived from the source as the user types -----------------------
  // The same rule as jobs.services: <namespace>/<last path component>:<tag>, tag "latest" when
  // none is given; a sync always goes to <namespace>/<last path component>.
  function splitSource(text) {
    var ref = text.trim();
    var at = ref.indexOf("@");
    var pinned = at >= 0;
    if (pinned) ref = ref.slice(0, at);
    var colon = ref.indexOf(":", ref.lastIndexOf("/") + 1);
    var name = colon >= 0 ? ref.slice(0, colon) : ref;
    var tag = colon >= 0 ? ref.slice(colon + 1) : (pinned ? "" : "latest");
    return { last: name.slice(name.lastIndexOf("/") + 1), tag: tag };
  }

  var jobForm = document.querySelector("form[data-derive-destination]");
  if (jobForm) {
    var source = jobForm.elements.namedItem("source");
    var destination = jobForm.elements.namedItem("destination");
    var namespace = jobForm.elements.namedItem("namespace");
    var kinds = jobForm.querySelectorAll("input[name=kind]");
    var syncOnly = jobForm.querySelector("[data-sync-only]");

    var kind = function () {
      for (var i = 0; i < kinds.length; i++) if (kinds[i].checked) return kinds[i].value;
      return "copy";
    };
    var namespaceName = function () {
      var option = namespace.options[namespace.selectedIndex];
      return option ? option.dataset.namespace || "" : "";
    };
    var derived = function () {
      var parts = splitSource(source.value);
      if (!parts.last || !namespaceName()) return "";
      if (kind() === "sync") return namespaceName() + "/" + parts.last;
      return parts.tag ? namespaceName() + "/" + parts.last + ":" + parts.tag : "";
    };
    // A destination the user wrote (or that came back from the server differing from the
    // derived one) is theirs: typing in the source no longer overwrites it.
    var touched = destination.value !== "" && destination.value !== derived();
    var update = function () {
      var sync = kind() === "sync";
      if (syncOnly) {
        syncOnly.hidden = !sync;
        syncOnly.disabled = !sync; // a disabled fieldset is not submitted: no filters on a copy
      }
      destination.readOnly = sync;
      if (sync || !touched) destination.value = derived();
    };
    destination.addEventListener("input", function () { touched = destination.value.trim() !== ""; });
    source.addEventListener("input", update);
    namespace.addEventListener("change", update);
    kinds.forEach(function (radio) { radio.addEventListener("change", update); });
    update();
  }

  // -- live status: rows and job pages of active jobs update in place ---------------------------
  var container = document.querySelector("[data-status-url]");
  var timer = null;
  var failures = 0;

  function watched() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-job-id][data-active='1']"));
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, delay);
  }

  function refresh(element) {
    fetch(element.dataset.partialUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) { element.innerHTML = html; })
      .catch(function () { /* the next change, or a reload, brings it */ });
  }

  function apply(elements, jobs) {
    var byId = {};
    jobs.forEach(function (job) { byId[String(job.id)] = job; });
    elements.forEach(function (element) {
      var job = byId[element.dataset.jobId];
      if (!job) {
        element.dataset.active = "0"; // deleted, or no longer the caller's to see
        return;
      }
      var changed = job.status !== element.dataset.status;
      var badge = element.querySelector("[data-role=badge]");
      if (badge) {
        badge.className = "badge badge-" + job.status;
        badge.textContent = job.label;
      }
      var elapsed = element.querySelector("[data-role=elapsed]");
      if (elapsed) elapsed.textContent = job.elapsed;
      element.dataset.status = job.status;
      element.dataset.active = job.active ? "1" : "0";
      if (changed) {
        announce(element.dataset.label + ": " + job.label);
        if (element.dataset.partialUrl) refresh(element);
      }
    });
  }

  function poll() {
    var elements = watched();
    if (!container || elements.length === 0) return; // nothing active: stop polling
    if (document.hidden) {
      document.addEventListener("visibilitychange", poll, { once: true });
      return;
    }
    var ids = [];
    elements.forEach(function (element) {
      if (ids.indexOf(element.dataset.jobId) < 0 && ids.length < MAX_IDS) ids.push(element.dataset.jobId);
    });
    fetch(container.dataset.statusUrl + "?ids=" + ids.join(","), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        failures = 0;
        apply(elements, data.jobs || []);
        schedule(POLL_MS);
      })
      .catch(function () {
        // Back off on errors (server restarting, signed out), and give up after a few.
        failures += 1;
        if (failures < 6) schedule(POLL_MS * Math.pow(2, failures));
      });
  }

  if (container) schedule(POLL_MS);
})();
