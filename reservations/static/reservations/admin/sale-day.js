/* Sale day in the admin: the live page of a ticket and the overview of the sales now.
 *
 * Both pages start from the data the server rendered into #ft-live-config, then poll: the live
 * page the sales API (GET /api/v1/tickets/{id}/sales/, authenticated by the admin session), the
 * overview one admin view with the same Sales for every ticket it lists. Times are shown in the
 * admin's time zone (DJANGO_TIME_ZONE). The chart is uPlot, served as a static file.
 */
(function () {
  "use strict";

  const root = document.getElementById("ft-live");
  const configElement = document.getElementById("ft-live-config");
  if (!root || !configElement) {
    return;
  }
  const config = JSON.parse(configElement.textContent);
  const zone = config.timeZone;
  const WINDOW = 300;
  const numbers = new Intl.NumberFormat("en-US");
  const clock = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const dayAndClock = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const STATUS_LABELS = {
    on_sale: "On sale", sold_out: "Sold out", upcoming: "Upcoming", paused: "Paused", closed: "Closed",
  };

  // Formatting ---------------------------------------------------------------------------------

  function time(iso) {
    if (!iso) {
      return "–";
    }
    const moment = new Date(iso);
    const today = dayAndClock.format(new Date()).split(",")[0];
    const text = dayAndClock.format(moment);
    return text.split(",")[0] === today ? clock.format(moment) + " today" : text;
  }

  function duration(ms) {
    const seconds = Math.max(0, ms) / 1000;
    if (seconds < 60) {
      return (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)) + " s";
    }
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) {
      return minutes + " min " + String(Math.floor(seconds % 60)).padStart(2, "0") + " s";
    }
    const hours = Math.floor(minutes / 60);
    if (hours < 48) {
      return hours + " h " + String(minutes % 60).padStart(2, "0") + " min";
    }
    return Math.floor(hours / 24) + " days";
  }

  function percent(sales) {
    return sales.quantity ? (100 * sales.issued_count) / sales.quantity : 0;
  }

  // What the sale is doing now, as the booking checks see it, plus "paused": not open yet although
  // seats were already sold.
  function status(ticket, sales, now) {
    if (ticket.saleStartsAt && now < new Date(ticket.saleStartsAt)) {
      return sales.first_booking_at ? "paused" : "upcoming";
    }
    if (now >= new Date(ticket.eventTime)) {
      return "closed";
    }
    return sales.remaining <= 0 ? "sold_out" : "on_sale";
  }

  function statusNote(ticket, key, now) {
    if (key === "paused" || key === "upcoming") {
      const opens = new Date(ticket.saleStartsAt);
      return (key === "paused" ? "reopens in " : "opens in ") + duration(opens - now);
    }
    return "";
  }

  function sumOver(perSecond, sinceSecond, pick) {
    let total = 0;
    for (const entry of perSecond) {
      if (Date.parse(entry.at) / 1000 >= sinceSecond) {
        total += pick(entry);
      }
    }
    return total;
  }

  function refusedOf(entry) {
    const r = entry.refused;
    return r ? r.sold_out + r.busy + r.not_admitted : 0;
  }

  function setField(container, name, text) {
    for (const element of container.querySelectorAll('[data-field="' + name + '"]')) {
      element.textContent = text;
    }
  }

  function badge(element, key) {
    element.className = "ft-status ft-status-" + key;
    element.textContent = STATUS_LABELS[key];
  }

  // Polling ------------------------------------------------------------------------------------

  function poll(url, render) {
    const pulse = root.querySelector('[data-field="updated"]');
    let delay = config.pollSeconds * 1000;
    async function tick() {
      let wait = delay;
      try {
        const response = await fetch(url, {
          credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
        });
        if (response.status === 429 || response.status === 503) {
          wait = 1000 * Math.max(1, parseInt(response.headers.get("Retry-After") || "5", 10));
          throw new Error("answered " + response.status + ", retrying in " + wait / 1000 + " s");
        }
        if (response.status === 401 || response.status === 403) {
          throw new Error("signed out: reload the page to sign in again");
        }
        if (!response.ok) {
          throw new Error("answered " + response.status);
        }
        render(await response.json());
        pulse.textContent = "live · updated " + clock.format(new Date());
        pulse.classList.remove("ft-pulse-error");
        pulse.classList.toggle("ft-pulse-beat");
      } catch (error) {
        pulse.textContent = "not updating (" + (error.message || "offline") + ")";
        pulse.classList.add("ft-pulse-error");
      } finally {
        window.setTimeout(tick, wait);
      }
    }
    pulse.textContent = "live · loaded " + clock.format(new Date());
    window.setTimeout(tick, delay);
  }

  // The live page of one ticket ------------------------------------------------------------------

  function livePage() {
    const ticket = config;
    let sales = config.sales;
    const chartElement = document.getElementById("ft-chart");
    const chart = makeChart(chartElement);

    function renderClock() {
      const now = new Date();
      const key = status(ticket, sales, now);
      badge(root.querySelector('[data-field="status"]'), key);
      const waiting = key === "paused" || key === "upcoming";
      const opened = ticket.saleStartsAt || ticket.createdAt;
      setField(root, "opened_label", key === "paused" ? "Paused until" : waiting ? "Sale opens" : "Sale opened");
      setField(root, "opened", time(opened) + (waiting ? " (" + statusNote(ticket, key, now) + ")" : ""));
      for (const form of root.querySelectorAll('[data-control="pause"]')) {
        form.hidden = waiting || key === "closed";
      }
      for (const form of root.querySelectorAll('[data-control="resume"]')) {
        form.hidden = !waiting;
      }
      if (!sales.sold_out_at && sales.first_booking_at && !waiting && key !== "closed") {
        setField(root, "took", "selling for " + duration(now - new Date(opened)));
      }
    }

    function render(data) {
      sales = data;
      const nowSecond = Math.floor(Date.now() / 1000);
      setField(root, "issued_count", numbers.format(sales.issued_count));
      setField(root, "quantity", numbers.format(sales.quantity));
      setField(root, "remaining", numbers.format(sales.remaining));
      setField(root, "remaining_note", sales.remaining === 0 ? "sold out" : "");
      const share = percent(sales);
      setField(root, "percent", share.toFixed(1) + "%");
      const bar = root.querySelector('[data-field="percent_bar"]');
      bar.setAttribute("aria-valuenow", share.toFixed(1));
      bar.firstElementChild.style.width = Math.min(100, share) + "%";
      const lastTen = sumOver(sales.per_second, nowSecond - 9, (entry) => entry.booked);
      setField(root, "rate", (lastTen / 10).toFixed(1));
      const redisDown = sales.per_second.some((entry) => entry.refused === null);
      const refused = { sold_out: 0, busy: 0, not_admitted: 0 };
      for (const entry of sales.per_second) {
        for (const code in refused) {
          refused[code] += entry.refused ? entry.refused[code] : 0;
        }
      }
      setField(root, "refused_total", redisDown ? "?" : numbers.format(refused.sold_out + refused.busy + refused.not_admitted));
      // No-break spaces: a code and its count never wrap apart ("not / admitted 0").
      setField(
        root,
        "refused_note",
        redisDown
          ? "not counted while Redis is unreachable"
          : "sold\u00a0out\u00a0" + numbers.format(refused.sold_out) +
              " · busy\u00a0" + numbers.format(refused.busy) +
              " · not\u00a0admitted\u00a0" + numbers.format(refused.not_admitted),
      );
      setField(root, "first_booking_at", time(sales.first_booking_at));
      setField(root, "sold_out_at", sales.sold_out_at ? time(sales.sold_out_at) : "not sold out");
      if (sales.sold_out_at) {
        const opened = new Date(ticket.saleStartsAt || ticket.createdAt);
        const soldOut = new Date(sales.sold_out_at);
        const from = opened < soldOut ? opened : new Date(sales.first_booking_at);
        setField(root, "took", duration(soldOut - from) + (opened < soldOut ? " from the opening" : " from the first booking"));
      } else if (!sales.first_booking_at) {
        setField(root, "took", "–");
      }
      // queue is null while Redis is unreachable: say the counts are not known, not the last ones.
      for (const name of ["waiting", "admitted", "booked", "expired"]) {
        setField(root, "queue_" + name, sales.queue ? numbers.format(sales.queue[name]) : "?");
      }
      chart.update(sales.per_second, nowSecond);
      chartElement.dataset.seconds = String(sales.per_second.length);
      chartElement.dataset.booked = String(sumOver(sales.per_second, 0, (entry) => entry.booked));
      root.querySelector('[data-field="chart_empty"]').hidden = sales.per_second.length > 0;
      renderClock();
    }

    render(sales);
    window.setInterval(renderClock, 1000);
    poll(ticket.salesUrl, render);
  }

  function count(u, value, series, index) {
    if (index == null) return "";
    return value == null ? "?" : String(value);
  }

  function makeChart(element) {
    const style = getComputedStyle(document.documentElement);
    const quiet = style.getPropertyValue("--body-quiet-color").trim() || "#666";
    const grid = style.getPropertyValue("--hairline-color").trim() || "#e8e8e8";
    const axis = { stroke: quiet, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const bars = window.uPlot.paths.bars({ size: [0.85, 14] });
    const options = {
      width: Math.max(320, element.clientWidth),
      height: 280,
      tzDate: (seconds) => window.uPlot.tzDate(new Date(seconds * 1000), zone),
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
      axes: [
        { ...axis, space: 70, values: (u, splits) => splits.map((s) => clock.format(new Date(s * 1000))) },
        { ...axis, size: 48, label: "per second", labelSize: 18 },
      ],
      series: [
        {
          label: "time",
          value: (u, seconds) => (seconds == null ? "point at a second" : clock.format(new Date(seconds * 1000))),
        },
        // Away from the chart the legend names the lines; pointing at a second shows its counts.
        { label: "booked", stroke: "#1a7f37", fill: "rgba(26, 127, 55, 0.55)", paths: bars, width: 1, value: count },
        { label: "cancelled", stroke: "#c2410c", width: 2, value: count },
        { label: "refused: sold out", stroke: "#b91c1c", width: 1.5, dash: [6, 3], value: count },
        { label: "refused: busy", stroke: "#7c3aed", width: 1.5, value: count },
        { label: "refused: not admitted", stroke: "#0369a1", width: 1.5, value: count },
      ],
    };
    const empty = [[], [], [], [], [], []];
    const plot = new window.uPlot(options, empty, element);
    window.addEventListener("resize", () => plot.setSize({ width: Math.max(320, element.clientWidth), height: 280 }));
    return {
      update(perSecond, nowSecond) {
        const end = Math.max(nowSecond, ...perSecond.map((entry) => Date.parse(entry.at) / 1000));
        const start = end - WINDOW + 1;
        const bySecond = new Map(perSecond.map((entry) => [Date.parse(entry.at) / 1000, entry]));
        // The sales API says null in every second while Redis is unreachable: the refusals of the
        // seconds it lists no entry for are not known then either, so no line is drawn for them.
        const unknown = perSecond.some((entry) => entry.refused === null);
        const data = [[], [], [], [], [], []];
        for (let second = start; second <= end; second++) {
          const entry = bySecond.get(second);
          const refused = entry ? entry.refused : unknown ? null : { sold_out: 0, busy: 0, not_admitted: 0 };
          data[0].push(second);
          data[1].push(entry ? entry.booked : 0);
          data[2].push(entry ? entry.cancelled : 0);
          data[3].push(refused ? refused.sold_out : null);
          data[4].push(refused ? refused.busy : null);
          data[5].push(refused ? refused.not_admitted : null);
        }
        plot.setData(data);
      },
    };
  }

  // The overview: every ticket on sale now or opening soon ---------------------------------------

  function overviewPage() {
    const body = root.querySelector("#ft-overview tbody");
    let tickets = config.tickets;

    function cell(row, className, content) {
      const td = document.createElement("td");
      td.className = className;
      if (content instanceof Node) {
        td.appendChild(content);
      } else {
        td.textContent = content;
      }
      row.appendChild(td);
      return td;
    }

    function sparkline(perSecond, nowSecond) {
      const buckets = new Array(30).fill(0);
      for (const entry of perSecond) {
        const age = nowSecond - Date.parse(entry.at) / 1000;
        if (age >= 0 && age < WINDOW) {
          buckets[29 - Math.floor(age / 10)] += entry.booked;
        }
      }
      const peak = Math.max(1, ...buckets);
      const ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 120 24");
      svg.setAttribute("class", "ft-spark");
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", "bookings per 10 seconds over the last 5 minutes");
      // A baseline across the five minutes, so that seconds without bookings read as none.
      const base = document.createElementNS(ns, "rect");
      base.setAttribute("class", "ft-spark-base");
      base.setAttribute("x", "0");
      base.setAttribute("y", "23");
      base.setAttribute("width", "120");
      base.setAttribute("height", "1");
      svg.appendChild(base);
      buckets.forEach((count, index) => {
        const height = count ? Math.max(1.5, (22 * count) / peak) : 0;
        const rect = document.createElementNS(ns, "rect");
        rect.setAttribute("class", "ft-spark-bar");
        rect.setAttribute("x", String(index * 4));
        rect.setAttribute("y", String(24 - height));
        rect.setAttribute("width", "3");
        rect.setAttribute("height", String(height));
        svg.appendChild(rect);
      });
      return svg;
    }

    function progress(share) {
      const wrap = document.createElement("span");
      wrap.className = "ft-inline-progress";
      const bar = document.createElement("span");
      bar.className = "ft-bar";
      const fill = document.createElement("span");
      fill.style.width = Math.min(100, share) + "%";
      bar.appendChild(fill);
      const label = document.createElement("span");
      label.textContent = share.toFixed(1) + "%";
      wrap.append(bar, label);
      return wrap;
    }

    function render() {
      const now = new Date();
      const nowSecond = Math.floor(now / 1000);
      const order = { on_sale: 0, sold_out: 1, paused: 2, upcoming: 3, closed: 4 };
      const rows = tickets
        .map((ticket) => ({ ticket, key: status(ticket, ticket.sales, now) }))
        .sort((a, b) => order[a.key] - order[b.key]);
      body.replaceChildren();
      for (const { ticket, key } of rows) {
        const sales = ticket.sales;
        const row = document.createElement("tr");
        row.dataset.ticket = ticket.id;
        const link = document.createElement("a");
        link.href = ticket.liveUrl;
        link.textContent = ticket.title;
        cell(row, "ft-title", link);
        const state = document.createElement("span");
        badge(state, key);
        const statusCell = cell(row, "ft-state", state);
        const note = statusNote(ticket, key, now);
        if (note) {
          const small = document.createElement("small");
          small.textContent = " " + note;
          statusCell.appendChild(small);
        }
        cell(row, "ft-num ft-sold", numbers.format(sales.issued_count) + " / " + numbers.format(sales.quantity));
        cell(row, "ft-num ft-remaining", numbers.format(sales.remaining));
        cell(row, "ft-percent", progress(percent(sales)));
        cell(row, "ft-num ft-minute", numbers.format(sumOver(sales.per_second, nowSecond - 59, (entry) => entry.booked)));
        cell(row, "ft-spark-cell", sparkline(sales.per_second, nowSecond));
        cell(row, "ft-event", time(ticket.eventTime));
        body.appendChild(row);
      }
      root.querySelector('[data-field="empty"]').hidden = rows.length > 0;
    }

    render();
    window.setInterval(render, 1000);
    poll(root.dataset.url, (data) => {
      tickets = data.tickets;
      render();
    });
  }

  if (root.dataset.page === "live") {
    livePage();
  } else {
    overviewPage();
  }
})();
