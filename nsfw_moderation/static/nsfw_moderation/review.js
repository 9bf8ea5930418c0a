/* nsfw_moderation review queue: keyboard shortcuts and small conveniences.
   Everything here is optional: without JavaScript, the buttons, checkboxes
   and reveal toggles work as plain HTML. */
"use strict";
{
    const FOCUS_KEY = "nsfw_moderation.focus";

    function cards() {
        return Array.from(document.querySelectorAll(".nsfw-card[data-pk]"));
    }

    function current() {
        return document.querySelector(".nsfw-card.is-current");
    }

    function setCurrent(card) {
        if (!card) {
            return;
        }
        cards().forEach((other) => other.classList.toggle("is-current", other === card));
        card.focus({preventScroll: true});
        card.scrollIntoView({block: "nearest", behavior: "smooth"});
    }

    function move(step) {
        const all = cards();
        if (!all.length) {
            return;
        }
        const index = all.indexOf(current());
        const next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
        setCurrent(all[next]);
    }

    function decide(decision) {
        const card = current();
        if (!card) {
            return;
        }
        // After the page reloads, land on the card that takes this one's place.
        sessionStorage.setItem(FOCUS_KEY, String(cards().indexOf(card)));
        card.querySelector(`[data-decision="${decision}"]`).click();
    }

    function toggle(selector) {
        const card = current();
        const box = card && card.querySelector(selector);
        if (box) {
            box.checked = !box.checked;
            box.dispatchEvent(new Event("change", {bubbles: true}));
        }
    }

    // Shortcuts stay on after ticking a checkbox, but never fire while typing.
    const TEXT_INPUTS = [
        'input:not([type="checkbox"]):not([type="radio"]):not([type="button"]):not([type="submit"])',
        "textarea",
        "select",
        "[contenteditable]",
    ].join(", ");

    function typing(target) {
        return target.closest(TEXT_INPUTS) !== null;
    }

    const KEYS = {
        j: () => move(1),
        ArrowRight: () => move(1),
        k: () => move(-1),
        ArrowLeft: () => move(-1),
        a: () => decide("approve"),
        r: () => decide("reject"),
        v: () => toggle(".nsfw-reveal-toggle"),
        x: () => toggle('input[name="ids"]'),
    };

    document.addEventListener("keydown", (event) => {
        if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
            return;
        }
        const action = KEYS[event.key];
        if (action) {
            event.preventDefault();
            action();
        }
    });

    document.addEventListener("click", (event) => {
        const card = event.target.closest(".nsfw-card[data-pk]");
        if (card && !card.classList.contains("is-current")) {
            cards().forEach((other) => other.classList.toggle("is-current", other === card));
        }
    });

    document.addEventListener("change", (event) => {
        const target = event.target;
        if (target.matches('input[name="ids"]')) {
            target.closest(".nsfw-card").classList.toggle("is-selected", target.checked);
        } else if (target.matches(".nsfw-select-all")) {
            document.querySelectorAll('input[name="ids"]').forEach((box) => {
                box.checked = target.checked;
                box.closest(".nsfw-card").classList.toggle("is-selected", box.checked);
            });
        } else if (target.closest("form[data-autosubmit]")) {
            target.form.requestSubmit();
        }
    });

    document.addEventListener("DOMContentLoaded", () => {
        // With JavaScript, display settings apply as soon as they are ticked.
        document.querySelectorAll(".nsfw-preferences-save").forEach((button) => {
            button.hidden = true;
        });
        const all = cards();
        const saved = Number.parseInt(sessionStorage.getItem(FOCUS_KEY) || "", 10);
        sessionStorage.removeItem(FOCUS_KEY);
        if (all.length) {
            setCurrent(all[Number.isNaN(saved) ? 0 : Math.min(saved, all.length - 1)]);
        }
    });
}
