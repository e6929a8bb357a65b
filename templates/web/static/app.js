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
      var chips = document.querySelectorAll('.chip[data-since], .chip-since[data-since]');
      for (var i = 0; i < chips.length; i++) {
        var since = Number(chips[i].getAttribute('data-since'));
        var el = chips[i].querySelector('.dur');
        if (el && since) el.textContent = fmtDuration(Date.now() + skew - since);
      }
    }
    setInterval(tick, 1000);

    var board = document.querySelector('.board');
    var hostPage = document.querySelector('.host-page');
    if ((board || hostPage) && window.EventSource) startLive(board, hostPage);
    var log = document.getElementById('installer-log');
    if (log && window.EventSource) startLog(log);

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

  // The stream says "Live" only while it is heard: EventSource reports some deaths (error, CLOSED) but not a
  // proxy that stops passing data or a half-open connection, so the server's heartbeat is watched too.
  function startLive(board, hostPage) {
    var status = document.getElementById('live-status');
    var params = new URLSearchParams(location.search);
    var filterState = params.get('state');
    var filterRack = params.get('rack');
    var filterProfile = params.get('profile');
    var es = null;
    var heartbeatMs = 5000;
    var lastHeard = 0;
    var stopped = false;
    function say(text, on) {
      if (!status) return;
      status.textContent = text;
      status.className = 'live-status ' + (on ? 'on' : 'off');
    }
    function heard() {
      lastHeard = Date.now();
      if (!stopped) say('Live', true);
    }
    function connect() {
      es = new EventSource('/board/stream');
      es.onopen = heard;
      es.onerror = function () {
        // CLOSED: the server refused the stream (signed out, too many streams); CONNECTING: the browser retries.
        if (es.readyState === EventSource.CLOSED) {
          say('Offline — reconnecting', false);
          setTimeout(function () { if (!stopped) reconnect(); }, 3000);
        } else say('Offline — reconnecting', false);
      };
      es.addEventListener('hello', function (ev) {
        try { heartbeatMs = Number(JSON.parse(ev.data).heartbeatMs) || heartbeatMs; } catch (e) { /* keep the default */ }
        heard();
      });
      es.addEventListener('ping', heard);
      es.addEventListener('logout', function () { stopped = true; es.close(); location.reload(); });
      // The session opened more tabs than the server keeps streams for (4): this, the oldest, stops without retrying.
      es.addEventListener('replaced', function () {
        stopped = true;
        es.close();
        say('Live updates stopped: opened in newer tabs (reload to take them back)', false);
      });
      // The server lost track of what changed (a huge import at once): read the whole board again.
      es.addEventListener('resync', function () { location.reload(); });
      es.addEventListener('chip', function (ev) {
        heard();
        var c;
        try { c = JSON.parse(ev.data); } catch (e) { return; }
        if (board) updateBoardChip(c, filterState, filterRack, filterProfile);
        if (hostPage && c.mac === hostPage.getAttribute('data-mac')) refreshHostPage();
      });
    }
    function reconnect() {
      if (es) es.close();
      say('Offline — reconnecting', false);
      connect();
    }
    say('Connecting…', false);
    connect();
    // Three heartbeats missed: the stream is dead whatever EventSource thinks; say so and open a new one.
    setInterval(function () {
      if (stopped || !lastHeard) return;
      if (Date.now() - lastHeard > 3 * heartbeatMs) {
        lastHeard = Date.now();
        reconnect();
      }
    }, 1000);
  }

  function chipFor(mac) {
    var all = document.querySelectorAll('.chip[data-mac]');
    for (var i = 0; i < all.length; i++) if (all[i].getAttribute('data-mac') === mac) return all[i];
    return null;
  }

  function inView(c, view) {
    if (!view) return true;
    return view === 'stuck' ? Boolean(c.stuck) : c.state === view;
  }

  function applyChip(el, c) {
    el.className = 'chip stage-' + c.stage + (c.stuck ? ' stuck' : '') + ' flash-update';
    el.setAttribute('data-state', c.state);
    el.setAttribute('data-stuck', c.stuck ? '1' : '');
    el.setAttribute('data-since', String(c.since));
    el.querySelector('.stage').textContent = c.label;
    el.querySelector('.name').textContent = c.hostname;
    el.querySelector('.pos').textContent = c.position;
    el.querySelector('.reason').textContent = c.reason || '';
    if (c.reason) el.setAttribute('title', c.reason); else el.removeAttribute('title');
    setTimeout(function () { el.classList.remove('flash-update'); }, 1200);
  }

  function span(cls) { var s = document.createElement('span'); s.className = cls; return s; }

  /** A chip for a host the page has not shown yet (added or imported since it loaded), from the same parts as chip.eta. */
  function newChip(c) {
    var a = document.createElement('a');
    a.href = '/hosts/' + encodeURIComponent(c.mac);
    a.setAttribute('data-mac', c.mac);
    a.setAttribute('data-rack', c.rack);
    a.setAttribute('data-position', c.position);
    a.appendChild(span('pos'));
    a.appendChild(span('name'));
    a.appendChild(span('stage'));
    a.appendChild(span('reason'));
    var since = span('since');
    since.title = 'time in this stage';
    since.appendChild(document.createTextNode('for '));
    since.appendChild(span('dur'));
    a.appendChild(since);
    return a;
  }

  var natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

  function rackSection(board, rack) {
    var all = board.querySelectorAll('section.rack');
    for (var i = 0; i < all.length; i++) if (all[i].getAttribute('data-rack') === rack) return all[i];
    var sec = document.createElement('section');
    sec.className = 'rack';
    sec.setAttribute('data-rack', rack);
    sec.setAttribute('aria-label', 'Rack ' + (rack || '(none)'));
    var h = document.createElement('h2');
    h.textContent = 'Rack ' + (rack || '(none)') + ' ';
    h.appendChild(document.createElement('small'));
    sec.appendChild(h);
    var chips = document.createElement('div');
    chips.className = 'chips';
    sec.appendChild(chips);
    var before = null;
    for (var j = 0; j < all.length; j++) {
      var r = all[j].getAttribute('data-rack');
      if (rack !== '' && (r === '' || natural.compare(rack, r) < 0)) { before = all[j]; break; }
    }
    board.insertBefore(sec, before);
    var empty = board.querySelector('.empty');
    if (empty) empty.remove();
    return sec;
  }

  function updateBoardChip(c, filterState, filterRack, filterProfile) {
    var el = chipFor(c.mac);
    if (c.removed) { if (el) { el.remove(); recount(); } return; }
    if (!el) {
      if ((filterRack && filterRack !== c.rack) || (filterProfile && filterProfile !== c.profile)) return;
      el = newChip(c);
      var list = rackSection(document.querySelector('.board'), c.rack).querySelector('.chips');
      var next = null;
      var others = list.querySelectorAll('.chip');
      for (var i = 0; i < others.length; i++) {
        if (natural.compare(c.position, others[i].getAttribute('data-position') || '') < 0) { next = others[i]; break; }
      }
      list.insertBefore(el, next);
    } else if (el.getAttribute('data-rack') !== c.rack) {
      // Moved to another rack: out of this section, into that one.
      el.remove();
      el.setAttribute('data-rack', c.rack);
      rackSection(document.querySelector('.board'), c.rack).querySelector('.chips').appendChild(el);
    }
    applyChip(el, c);
    el.hidden = !inView(c, filterState);
    recount();
  }

  var VIEWS = [['build', 'in build'], ['stuck', 'stuck'], ['failed', 'failed'], ['expired', 'token expired'], ['built', 'built'], ['idle', 'idle']];
  function recount() {
    var totals = { idle: 0, build: 0, built: 0, failed: 0, expired: 0, stuck: 0 };
    var shown = 0;
    var chips = document.querySelectorAll('.board .chip[data-state]');
    for (var i = 0; i < chips.length; i++) {
      if (chips[i].hidden) continue;
      var s = chips[i].getAttribute('data-state');
      if (s in totals) totals[s]++;
      if (chips[i].getAttribute('data-stuck')) totals.stuck++;
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
      var any = false;
      rack.querySelectorAll('.chip[data-state]').forEach(function (ch) {
        if (ch.hidden) return;
        any = true;
        var st = ch.getAttribute('data-state');
        counts[st] = (counts[st] || 0) + 1;
        if (ch.getAttribute('data-stuck')) counts.stuck = (counts.stuck || 0) + 1;
      });
      if (!rack.querySelector('.chip')) { rack.remove(); return; }
      rack.hidden = !any;
      var small = rack.querySelector('h2 small');
      if (!small) return;
      while (small.firstChild) small.removeChild(small.firstChild);
      VIEWS.forEach(function (v) {
        if (!counts[v[0]]) return;
        var sp = document.createElement('span');
        sp.className = 'mini state-' + v[0];
        sp.textContent = counts[v[0]] + ' ' + v[1];
        small.appendChild(sp);
        small.appendChild(document.createTextNode(' '));
      });
    });
  }

  // The installer's log, live: the lines that come, at the chosen severity; the newest stay in view.
  var LOG_MAX_LINES = 2000;
  function startLog(section) {
    var pre = document.getElementById('log-lines');
    var select = document.getElementById('log-severity');
    var status = document.getElementById('log-status');
    var es = null;
    var heartbeatMs = 5000;
    var lastHeard = 0;
    function say(text, on) { if (status) { status.textContent = text; status.className = 'live-status ' + (on ? 'on' : 'off'); } }
    function heard() { lastHeard = Date.now(); say('Live', true); }
    function add(lines) {
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      lines.forEach(function (l) {
        if (pre.querySelector('[data-id="' + l.id + '"]')) return;
        var el = document.createElement('span');
        el.className = 'line sev-' + l.severity;
        el.setAttribute('data-id', String(l.id));
        el.textContent = new Date(l.at).toISOString().replace('T', ' ').slice(0, 19) + ' ' + l.severity + (l.app ? ' ' + l.app + ':' : '') + ' ' + l.text;
        pre.appendChild(el);
      });
      while (pre.childNodes.length > LOG_MAX_LINES) pre.removeChild(pre.firstChild);
      var empty = document.getElementById('log-empty');
      if (empty && lines.length) empty.remove();
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    function connect() {
      if (es) es.close();
      var sev = select ? select.value : '';
      es = new EventSource('/hosts/' + encodeURIComponent(section.getAttribute('data-mac')) + '/log/stream?build=' +
        encodeURIComponent(section.getAttribute('data-build')) + (sev ? '&severity=' + encodeURIComponent(sev) : ''));
      es.onerror = function () { say('Offline — reconnecting', false); };
      es.addEventListener('hello', function (ev) {
        try { heartbeatMs = Number(JSON.parse(ev.data).heartbeatMs) || heartbeatMs; } catch (e) { /* default */ }
        heard();
      });
      es.addEventListener('ping', heard);
      es.addEventListener('lines', function (ev) {
        heard();
        try { add(JSON.parse(ev.data)); } catch (e) { /* a bad message is skipped */ }
      });
      es.addEventListener('logout', function () { es.close(); location.reload(); });
      es.addEventListener('replaced', function () { es.close(); say('Live log stopped: opened in newer tabs', false); });
    }
    if (select) select.addEventListener('change', function () {
      // Another severity: the lines shown are the server's answer for it, from the start.
      while (pre.firstChild) pre.removeChild(pre.firstChild);
      connect();
    });
    connect();
    setInterval(function () {
      if (lastHeard && Date.now() - lastHeard > 3 * heartbeatMs) { lastHeard = Date.now(); say('Offline — reconnecting', false); connect(); }
    }, 1000);
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
