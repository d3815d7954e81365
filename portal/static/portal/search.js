// Progressive enhancement for the search page. Without this file everything still works
// (plain links and GET forms); with it, results update in place and the box autocompletes.
(function () {
  "use strict";
  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const region = document.getElementById("results-region");
  const list = document.getElementById("suggestions");
  const status = document.getElementById("loading-status");
  const combo = input;  // ARIA 1.2: the input itself is the combobox
  const TITLE = "Debian package search";
  const SUGGEST_MAX = 100;  // search.api.SUGGEST_MAX
  if (!form || !input || !region || !list) return;

  // ---- instant results ------------------------------------------------------------------
  let pending = null;
  // What had the focus inside the results region, so the same control has it after the
  // region is replaced (a ticked box, the sort menu); anything else (a page link, a chip)
  // sends the focus to the results summary, which announces the new count.
  function focusKey() {
    const el = document.activeElement;
    if (!el || !region.contains(el)) return null;
    if (el.matches("input[type=checkbox]")) return `input[type=checkbox][name="${CSS.escape(el.name)}"][value="${CSS.escape(el.value)}"]`;
    if (el.matches("select[name=sort], select[name=page_size]")) return `select[name=${el.name}]`;
    if (el.matches("[data-facet-search]")) return `[data-facet-search="${CSS.escape(el.dataset.facetSearch)}"]`;
    return ".summary";
  }
  function load(url, push) {
    if (pending) pending.abort();
    pending = new AbortController();
    const key = focusKey();
    const toggle = document.getElementById("filters-open");
    const drawerOpen = toggle && toggle.checked;
    const partial = url + (url.includes("?") ? "&" : "?") + "partial=1";
    region.classList.add("loading");
    region.setAttribute("aria-busy", "true");
    if (status) status.textContent = "Loading results…";
    fetch(partial, { signal: pending.signal, headers: { "X-Requested-With": "fetch" } })
      .then((r) => {
        // A 5xx answer is a whole error page (search unavailable), not a results region:
        // show it as a page (the catch below loads the URL) instead of nesting it here.
        if (r.status >= 500) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then((html) => {
        region.innerHTML = html;
        const newToggle = document.getElementById("filters-open");
        if (newToggle && drawerOpen) newToggle.checked = true;  // keep the phone's drawer open
        region.classList.remove("loading");
        region.setAttribute("aria-busy", "false");
        if (status) status.textContent = "";
        if (push) history.pushState({}, "", url);
        // The box says what was searched ("did you mean" and shared links change it).
        const q = new URL(url, location.href).searchParams.get("q") || "";
        if (document.activeElement !== input) input.value = q;
        document.title = (q ? q + " — " : "") + TITLE;
        bindFacetSearch();
        restoreFocus(key);
      })
      .catch((err) => { if (err.name !== "AbortError") window.location.assign(url); });
  }
  function restoreFocus(key) {
    if (!key) return;
    let target = region.querySelector(key);
    if (!target || key === ".summary") {
      target = region.querySelector(".summary") || region.querySelector(".notice, .zero h2");
      if (!target) return;
      target.setAttribute("tabindex", "-1");
      target.scrollIntoView({ block: "start" });
    }
    target.focus({ preventScroll: key !== ".summary" });
  }
  function formUrl() {
    const params = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...params.entries()]) if (v === "") params.delete(k);
    params.delete("page");
    if (params.get("sort") === "relevance") params.delete("sort");  // the default
    if (params.get("page_size") === "20") params.delete("page_size");
    const qs = params.toString();
    return form.action.split("?")[0] + (qs ? "?" + qs : "");
  }
  form.addEventListener("change", (e) => {
    if (e.target.matches("[data-autosubmit]")) load(formUrl(), true);
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); hide(); load(formUrl(), true); });
  region.addEventListener("click", (e) => {
    const a = e.target.closest("a");
    if (!a || a.origin !== location.origin || a.pathname !== location.pathname) return;
    if (e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    load(a.href, true);
  });
  window.addEventListener("popstate", () => {
    input.value = new URLSearchParams(location.search).get("q") || "";
    load(location.href, false);
  });

  // ---- long facets: a search box over their values, and "show more" ----------------------
  function renderValues(ul, facet, values) {
    ul.replaceChildren(...values.map((v) => {
      const li = document.createElement("li");
      li.className = "facet-value";
      li.dataset.facet = facet; li.dataset.value = v.value;
      const label = document.createElement("label");
      const cb = document.createElement("input");
      cb.type = "checkbox"; cb.name = facet; cb.value = v.value; cb.checked = v.selected;
      cb.dataset.autosubmit = "";
      const name = document.createElement("span");
      name.className = "facet-link"; name.textContent = v.label;
      const count = document.createElement("span");
      count.className = "count"; count.textContent = v.count.toLocaleString("en");
      label.append(cb, name, count); li.append(label);
      return li;
    }));
  }
  function facetValues(facet, extra) {
    const params = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(extra)) params.set(k, v);
    return fetch(`/api/facets/${encodeURIComponent(facet)}?${params}`).then((r) => r.json());
  }
  function bindFacetSearch() {
    region.querySelectorAll("[data-facet-search]").forEach((box) => {
      let timer = null;
      box.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          const facet = box.dataset.facetSearch;
          facetValues(facet, { contains: box.value }).then((data) => {
            if (!data.values) return;
            renderValues(box.parentElement.querySelector(".facet-values"), facet, data.values);
          });
        }, 150);
      });
    });
    region.querySelectorAll("[data-facet-more]").forEach((button) => {
      button.hidden = false;
      button.addEventListener("click", () => {
        const facet = button.dataset.facetMore;
        facetValues(facet, { limit: "100" }).then((data) => {
          if (!data.values) return;
          const ul = button.parentElement.querySelector(".facet-values");
          renderValues(ul, facet, data.values);
          button.hidden = true;
          const first = ul.querySelector("input");
          if (first) first.focus();  // the button is gone: keep the focus in the list
        });
      });
    });
  }
  bindFacetSearch();

  // ---- autocomplete (ARIA combobox with a listbox) ------------------------------------------
  let active = -1, items = [], timer = null, seq = 0;
  function hide() {
    // Also drop a suggestion request still waiting or in flight: its answer must not reopen
    // the list once the visitor has searched, pressed Escape or left the box.
    clearTimeout(timer); seq++;
    list.hidden = true; active = -1; items = [];
    combo && combo.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }
  // The typed text, marked where it occurs in a suggestion (built as DOM nodes: no HTML).
  function marked(text, typed) {
    const span = document.createElement("span");
    const at = typed ? text.toLowerCase().indexOf(typed.toLowerCase()) : -1;
    if (at < 0) { span.textContent = text; return span; }
    const mark = document.createElement("mark");
    mark.textContent = text.slice(at, at + typed.length);
    span.append(text.slice(0, at), mark, text.slice(at + typed.length));
    return span;
  }
  function option(i, kind, value, parts) {
    const li = document.createElement("li");
    li.id = "suggestion-" + i; li.setAttribute("role", "option");
    li.className = "s-" + kind;
    li.dataset[kind] = value;
    li.append(...parts);
    li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(i); });
    return li;
  }
  function render(data, typed) {
    list.replaceChildren();
    items = [];
    // Searches people made first (Enter runs one), then packages (Enter opens one).
    (data.queries || []).forEach((q) => {
      const icon = document.createElement("span"); icon.className = "s-icon"; icon.textContent = "Search:";
      const text = marked(q, typed); text.className = "s-name";
      items.push(option(items.length, "query", q, [icon, text]));
    });
    (data.suggestions || []).forEach((s) => {
      const n = marked(s.name, typed.split(" ").pop()); n.className = "s-name";
      const d = document.createElement("span"); d.className = "s-summary"; d.textContent = s.summary;
      items.push(option(items.length, "name", s.name, [n, d]));
    });
    list.append(...items);
    list.hidden = items.length === 0;
    combo && combo.setAttribute("aria-expanded", String(!list.hidden));
    active = -1;
    input.removeAttribute("aria-activedescendant");  // it named an option of the old list
  }
  function highlight(i) {
    items.forEach((li, j) => li.setAttribute("aria-selected", String(i === j)));
    active = i;
    if (i >= 0) input.setAttribute("aria-activedescendant", items[i].id);
  }
  function choose(i) {
    const item = items[i];
    hide();
    if (item.dataset.query !== undefined) {
      // A search people made: run it here.
      input.value = item.dataset.query;
      load(formUrl(), true);
    } else {
      // A package suggestion opens the package.
      window.location.assign("/packages/" + encodeURIComponent(item.dataset.name) + "/");
    }
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    // The API refuses longer prefixes; counted in characters, not UTF-16 units (a cut
    // emoji made encodeURIComponent throw, and the list stopped updating).
    const q = Array.from(input.value.trim()).slice(0, SUGGEST_MAX).join("");
    if (!q) { hide(); return; }
    timer = setTimeout(() => {
      const mine = ++seq;
      fetch("/api/suggest?q=" + encodeURIComponent(q))
        .then((r) => r.json())
        .then((data) => { if (mine === seq && data.suggestions) render(data, q); })
        .catch(() => hide());
    }, 120);
  });
  input.addEventListener("keydown", (e) => {
    // Escape only closes the suggestions: a search box's own Escape would empty the query
    // while the results of it stay on the page.
    if (e.key === "Escape") { e.preventDefault(); hide(); return; }
    if (list.hidden) return;
    if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % items.length); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight((active - 1 + items.length) % items.length); }
    else if (e.key === "Enter" && active >= 0) { e.preventDefault(); choose(active); }
  });
  input.addEventListener("blur", () => setTimeout(hide, 100));
})();
