// rackboot web UI: small progressive enhancements. Every page works without this file; it adds the
// live board (Server-Sent Events), ticking time-in-stage, and conveniences. It never builds HTML
// from strings: text goes in through textContent only.
'use strict';
(function () {
  document.documentElement.classList.add('has-js');

  function fmtDuration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
    var h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }

  function ready(fn) { if (document.readyState !== 'loading') fn(); else document.addEventListener('DOMContentLoaded', fn); }

  ready(function () {
    var root = document.querySelector('[data-now]');
    // The server's clock and ours may differ; time in stage is measured on the server's.
    var skew = root ? Number(root.getAttribute('data-now')) - Date.now() : 0;

    function tick() {
      var chips = document.querySelectorAll('.chip[data-since]');
      for (var i = 0; i < chips.length; i++) {
        var since = Number(chips[i].getAttribute('data-since'));
        var el = chips[i].querySelector('.since .dur');
        if (el && since) el.textContent = fmtDuration(Date.now() + skew - since);
      }
    }
    setInterval(tick, 1000);

    var board = document.querySelector('.board');
    var hostPage = document.querySelector('.host-page');
    if ((board || hostPage) && window.EventSource) startLive(board, hostPage);

    var fileInput = document.querySelector('input[type=file][data-fill]');
    if (fileInput) {
      fileInput.addEventListener('change', function () {
        var f = fileInput.files && fileInput.files[0];
        if (!f) return;
        f.text().then(function (t) { document.getElementById(fileInput.getAttribute('data-fill')).value = t; });
      });
    }

    // Profile editor: "line N" in an error selects that line in the text area.
    var ta = document.getElementById('p-text');
    if (ta) {
      document.querySelectorAll('a[data-line]').forEach(function (a) {
        a.addEventListener('click', function (ev) {
          ev.preventDefault();
          var n = Number(a.getAttribute('data-line'));
          var lines = ta.value.split('\n');
          var start = 0;
          for (var i = 0; i < n - 1 && i < lines.length; i++) start += lines[i].length + 1;
          var end = start + (lines[n - 1] || '').length;
          ta.focus();
          ta.setSelectionRange(start, end);
          var lineHeight = ta.scrollHeight / Math.max(lines.length, 1);
          ta.scrollTop = Math.max(0, (n - 5) * lineHeight);
        });
      });
    }
  });

  function startLive(board, hostPage) {
    var status = document.getElementById('live-status');
    var es = new EventSource('/board/stream');
    var filterState = new URLSearchParams(location.search).get('state');
    es.onopen = function () { if (status) { status.textContent = 'Live'; status.className = 'live-status on'; } };
    es.onerror = function () {
      if (!status) return;
      // CLOSED: the server refused the stream (signed out); CONNECTING: the browser retries by itself.
      status.textContent = es.readyState === EventSource.CLOSED ? 'Live updates stopped: reload the page' : 'Reconnecting…';
      status.className = 'live-status off';
    };
    es.addEventListener('logout', function () { es.close(); location.reload(); });
    // The session opened more tabs than the server keeps streams for (4): this, the oldest, stops without retrying.
    es.addEventListener('replaced', function () {
      es.close();
      if (status) { status.textContent = 'Live updates stopped: opened in newer tabs (reload to take them back)'; status.className = 'live-status off'; }
    });
    es.addEventListener('chip', function (ev) {
      var c;
      try { c = JSON.parse(ev.data); } catch (e) { return; }
      if (board) updateBoardChip(c, filterState);
      if (hostPage && c.mac === hostPage.getAttribute('data-mac')) refreshHostPage();
    });
  }

  function chipFor(mac) {
    var all = document.querySelectorAll('.chip[data-mac]');
    for (var i = 0; i < all.length; i++) if (all[i].getAttribute('data-mac') === mac) return all[i];
    return null;
  }

  function applyChip(el, c) {
    el.className = 'chip stage-' + c.stage + ' flash-update';
    el.setAttribute('data-state', c.state);
    el.setAttribute('data-since', String(c.since));
    el.querySelector('.stage').textContent = c.label;
    el.querySelector('.name').textContent = c.hostname;
    setTimeout(function () { el.classList.remove('flash-update'); }, 1200);
  }

  function updateBoardChip(c, filterState) {
    var el = chipFor(c.mac);
    if (!el) {
      // A host not on this page: filtered out, or new (added or imported since the page loaded).
      var note = document.getElementById('live-status');
      if (note && !c.removed && !filterState && !new URLSearchParams(location.search).get('rack')) note.textContent = 'New hosts: reload to see them';
      return;
    }
    if (c.removed) { el.remove(); recount(); return; }
    applyChip(el, c);
    el.hidden = Boolean(filterState && c.state !== filterState);
    recount();
  }

  function recount() {
    var totals = { idle: 0, build: 0, built: 0, failed: 0, expired: 0 };
    var shown = 0;
    var chips = document.querySelectorAll('.board .chip[data-state]');
    for (var i = 0; i < chips.length; i++) {
      if (chips[i].hidden) continue;
      var s = chips[i].getAttribute('data-state');
      if (s in totals) totals[s]++;
      shown++;
    }
    Object.keys(totals).forEach(function (s) {
      var n = document.querySelector('[data-count="' + s + '"]');
      if (n) n.textContent = String(totals[s]);
    });
    var t = document.querySelector('[data-count="total"]');
    if (t) t.textContent = String(shown);
    document.querySelectorAll('.rack').forEach(function (rack) {
      var counts = {};
      rack.querySelectorAll('.chip[data-state]').forEach(function (ch) { if (!ch.hidden) { var st = ch.getAttribute('data-state'); counts[st] = (counts[st] || 0) + 1; } });
      var small = rack.querySelector('h2 small');
      if (!small) return;
      while (small.firstChild) small.removeChild(small.firstChild);
      ['idle', 'build', 'built', 'failed', 'expired'].forEach(function (st) {
        if (!counts[st]) return;
        var span = document.createElement('span');
        span.className = 'mini state-' + st;
        span.textContent = counts[st] + ' ' + (st === 'build' ? 'in build' : st);
        small.appendChild(span);
        small.appendChild(document.createTextNode(' '));
      });
    });
  }

  // The host page: fetch it again and swap the parts that change (the server renders them escaped).
  var refreshing = false;
  function refreshHostPage() {
    if (refreshing) return;
    refreshing = true;
    fetch(location.href, { credentials: 'same-origin' }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
      refreshing = false;
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, 'text/html');
      ['host-chip', 'timeline', 'host-state'].forEach(function (id) {
        var fresh = doc.getElementById(id);
        var old = document.getElementById(id);
        if (fresh && old) old.replaceWith(document.importNode(fresh, true));
      });
      var actions = doc.querySelector('.actions');
      var oldActions = document.querySelector('.host-page .actions');
      if (actions && oldActions) oldActions.replaceWith(document.importNode(actions, true));
    }).catch(function () { refreshing = false; });
  }
})();
