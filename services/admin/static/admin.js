// The API Keys page's behaviour: the New API Key window, the location type-ahead, the roles
// drop-down, Advanced Role Configuration and the copy button. Plain JavaScript, no build step;
// every control is a real button, input or checkbox, so it works from the keyboard.
"use strict";
(function () {
  const all = (root, selector) => Array.from(root.querySelectorAll(selector));
  const cellKey = (role, location) => JSON.stringify([role, location]);

  function chip(name, id, text, kind) {
    const item = document.createElement("li");
    item.className = "chip";
    item.dataset.id = id;
    const label = document.createElement("span");
    label.textContent = text;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.dataset.remove = "";
    remove.setAttribute("aria-label", "Remove " + kind + " " + text);
    remove.textContent = "\u00d7";
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = id;
    item.append(label, remove, input);
    return item;
  }

  function keyForm(form) {
    const locations = form.querySelector("[data-chosen-locations]");
    const roles = form.querySelector("[data-chosen-roles]");
    const search = form.querySelector("[data-location-search]");
    const options = form.querySelector("[data-location-options]");
    const menu = form.querySelector("[data-role-menu]");
    const addRole = form.querySelector("[data-add-role]");
    const gridOpen = form.querySelector("[data-grid-open]");
    const grid = form.querySelector("[data-grid-dialog]");
    const gridTable = form.querySelector("[data-grid-table]");
    const offCells = form.querySelector("[data-off-cells]");
    const hint = form.querySelector("[data-grid-hint]");
    const chosen = (list) => all(list, "li.chip").map((item) => item.dataset.id);
    const nameOf = (list, id) => {
      const item = all(list, "li.chip").find((li) => li.dataset.id === id);
      return item ? item.querySelector("span").textContent : id;
    };

    function refresh() {
      const usable = chosen(locations).length >= 2 && chosen(roles).length >= 1;
      gridOpen.disabled = !usable;
      hint.hidden = usable;
    }

    form.addEventListener("click", (event) => {
      const button = event.target.closest("[data-remove]");
      if (!button) return;
      const item = button.closest("li.chip");
      const list = item.parentElement;
      if (list === roles) {
        const box = all(menu, "[data-role-option]").find((b) => b.value === item.dataset.id);
        if (box) box.checked = false;
      }
      item.remove();
      refresh();
      (list === locations ? search : addRole).focus();
    });

    // Network Locations: type-ahead over the tree, each location shown with its path
    let active = -1;
    const visible = () => all(options, "li").filter((li) => !li.hidden);
    function setOpen(open) {
      options.hidden = !open;
      search.setAttribute("aria-expanded", String(open));
    }
    function filter() {
      const needle = search.value.trim().toLowerCase();
      const taken = new Set(chosen(locations));
      all(options, "li").forEach((li) => {
        li.hidden = taken.has(li.dataset.id) || (needle !== "" && !li.dataset.path.toLowerCase().includes(needle));
        li.setAttribute("aria-selected", "false");
      });
      active = -1;
      search.removeAttribute("aria-activedescendant");
      setOpen(document.activeElement === search && visible().length > 0);
    }
    function highlight(index) {
      const shown = visible();
      if (!shown.length) return;
      active = (index + shown.length) % shown.length;
      shown.forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
      search.setAttribute("aria-activedescendant", shown[active].id);
      shown[active].scrollIntoView({ block: "nearest" });
    }
    function choose(li) {
      locations.append(chip("location", li.dataset.id, li.dataset.path, "location"));
      search.value = "";
      refresh();
      search.focus();
      filter();
      setOpen(false); // until the person types again
    }
    search.addEventListener("input", filter);
    search.addEventListener("focus", filter);
    search.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (options.hidden) filter();
        highlight(active + 1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight(active - 1);
      } else if (event.key === "Enter") {
        event.preventDefault(); // Enter here picks a location, never submits the form
        const shown = visible();
        if (!options.hidden && shown.length) choose(shown[active >= 0 ? active : 0]);
      } else if (event.key === "Escape" && !options.hidden) {
        event.preventDefault();
        event.stopPropagation();
        setOpen(false);
      }
    });
    search.addEventListener("blur", () => {
      setTimeout(() => {
        if (document.activeElement !== search) setOpen(false);
      }, 150);
    });
    options.addEventListener("mousedown", (event) => {
      const li = event.target.closest("li[role=option]");
      if (li) {
        event.preventDefault();
        choose(li);
      }
    });

    // Roles: the plus icon opens a drop-down with a checkbox per role
    function setMenu(open) {
      menu.hidden = !open;
      addRole.setAttribute("aria-expanded", String(open));
      const first = menu.querySelector("input");
      if (open && first) first.focus();
    }
    addRole.addEventListener("click", () => setMenu(menu.hidden));
    menu.addEventListener("change", (event) => {
      const box = event.target;
      if (!box.matches("[data-role-option]")) return;
      const item = all(roles, "li.chip").find((li) => li.dataset.id === box.value);
      if (box.checked && !item) roles.append(chip("role", box.value, box.dataset.name, "role"));
      if (!box.checked && item) item.remove();
      refresh();
    });
    menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        setMenu(false);
        addRole.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (!menu.hidden && !menu.contains(event.target) && !addRole.contains(event.target)) setMenu(false);
    });

    // Advanced Role Configuration: a role x location grid, every cell checked by default
    gridOpen.addEventListener("click", () => {
      const off = new Set(all(offCells, "input").map((input) => JSON.stringify(JSON.parse(input.value))));
      const roleIds = chosen(roles);
      const locationIds = chosen(locations);
      const table = document.createElement("table");
      table.className = "grid";
      table.createCaption().textContent = "Roles (rows) by location (columns)";
      const head = table.createTHead().insertRow();
      const corner = document.createElement("th");
      corner.scope = "col";
      corner.textContent = "Role";
      head.append(corner);
      locationIds.forEach((location) => {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = nameOf(locations, location);
        head.append(th);
      });
      const body = table.createTBody();
      roleIds.forEach((role) => {
        const row = body.insertRow();
        const th = document.createElement("th");
        th.scope = "row";
        th.textContent = nameOf(roles, role);
        row.append(th);
        locationIds.forEach((location) => {
          const box = document.createElement("input");
          box.type = "checkbox";
          box.dataset.cell = cellKey(role, location);
          box.checked = !off.has(cellKey(role, location));
          box.setAttribute("aria-label", nameOf(roles, role) + " at " + nameOf(locations, location));
          row.insertCell().append(box);
        });
      });
      gridTable.replaceChildren(table);
      grid.showModal();
    });
    grid.querySelector("[data-grid-cancel]").addEventListener("click", () => {
      grid.close();
      gridOpen.focus();
    });
    grid.querySelector("[data-grid-save]").addEventListener("click", () => {
      const unchecked = all(gridTable, "input[data-cell]").filter((box) => !box.checked);
      offCells.replaceChildren(
        ...unchecked.map((box) => {
          const input = document.createElement("input");
          input.type = "hidden";
          input.name = "off";
          input.value = box.dataset.cell;
          return input;
        }),
      );
      grid.close();
      gridOpen.focus();
    });
    refresh();
  }

  function focusFirst(dialog) {
    const target = dialog.querySelector("[aria-invalid=true]") || dialog.querySelector("input:not([type=hidden])");
    if (target) target.focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    all(document, "form[data-key-form]").forEach(keyForm);
    all(document, "[data-open-dialog]").forEach((link) => {
      link.addEventListener("click", (event) => {
        const dialog = document.getElementById(link.dataset.openDialog);
        if (!dialog || !dialog.showModal) return;
        event.preventDefault();
        dialog.showModal();
        focusFirst(dialog);
      });
    });
    all(document, "dialog[data-open]").forEach((dialog) => {
      dialog.close();
      dialog.showModal();
      focusFirst(dialog);
    });
    all(document, "[data-close-dialog]").forEach((link) => {
      link.addEventListener("click", (event) => {
        const dialog = link.closest("dialog");
        if (dialog) {
          event.preventDefault();
          dialog.close();
        }
      });
    });
    all(document, "[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const input = document.getElementById(button.dataset.copy);
        input.select();
        try {
          await navigator.clipboard.writeText(input.value);
        } catch (error) {
          document.execCommand("copy");
        }
        const note = document.querySelector("[data-copied]");
        if (note) note.hidden = false;
      });
    });
  });
})();
