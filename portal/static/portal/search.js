// Progressive enhancement for the search page. Without this file everything still works
// (plain links and GET forms); with it, results update in place and the box autocompletes.
(function () {
  "use strict";
  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const region = document.getElementById("results-region");
  const list = document.getElementById("suggestions");
  const combo = input && input.closest("[role=combobox]");
  if (!form || !input || !region || !list) return;

  // ---- instant results ------------------------------------------------------------------
  let pending = null;
  function load(url, push) {
    if (pending) pending.abort();
    pending = new AbortController();
    const partial = url + (url.includes("?") ? "&" : "?") + "partial=1";
    region.classList.add("loading");
    fetch(partial, { signal: pending.signal, headers: { "X-Requested-With": "fetch" } })
      .then((r) => {
        // A 5xx answer is a whole error page (search unavailable), not a results region:
        // show it as a page (the catch below loads the URL) instead of nesting it here.
        if (r.status >= 500) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then((html) => {
        region.innerHTML = html;
        region.classList.remove("loading");
        if (push) history.pushState({}, "", url);
        bindFacetSearch();
      })
      .catch((err) => { if (err.name !== "AbortError") window.location.assign(url); });
  }
  function formUrl() {
    const params = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...params.entries()]) if (v === "") params.delete(k);
    params.delete("page");
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

  // ---- search boxes over long facets (maintainer, tags) -------------------------------------
  function bindFacetSearch() {
    region.querySelectorAll("[data-facet-search]").forEach((box) => {
      let timer = null;
      box.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          const facet = box.dataset.facetSearch;
          const params = new URLSearchParams(location.search);
          params.set("contains", box.value);
          fetch(`/api/facets/${encodeURIComponent(facet)}?${params}`)
            .then((r) => r.json())
            .then((data) => {
              if (!data.values) return;
              const ul = box.parentElement.querySelector(".facet-values");
              ul.replaceChildren(...data.values.map((v) => {
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
            });
        }, 150);
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
  function render(suggestions) {
    list.replaceChildren();
    items = suggestions.map((s, i) => {
      const li = document.createElement("li");
      li.id = "suggestion-" + i; li.setAttribute("role", "option");
      li.dataset.name = s.name;
      const n = document.createElement("span"); n.className = "s-name"; n.textContent = s.name;
      const d = document.createElement("span"); d.className = "s-summary"; d.textContent = s.summary;
      li.append(n, d);
      li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(i); });
      list.append(li);
      return li;
    });
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
    input.value = items[i].dataset.name;
    hide();
    load(formUrl(), true);
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) { hide(); return; }
    timer = setTimeout(() => {
      const mine = ++seq;
      fetch("/api/suggest?q=" + encodeURIComponent(q))
        .then((r) => r.json())
        .then((data) => { if (mine === seq && data.suggestions) render(data.suggestions); })
        .catch(() => hide());
    }, 120);
  });
  input.addEventListener("keydown", (e) => {
    if (list.hidden) return;
    if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % items.length); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight((active - 1 + items.length) % items.length); }
    else if (e.key === "Enter" && active >= 0) { e.preventDefault(); choose(active); }
    else if (e.key === "Escape") { hide(); }
  });
  input.addEventListener("blur", () => setTimeout(hide, 100));
})();
