// The web chat: sends text, button taps and commands to /api/chat and shows the replies.
// The page arrives with its title, direction and labels in place (bot/channels/templates);
// every answer carries them again, so a language switch re-labels the page.
"use strict";
(() => {
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const sendButton = document.getElementById("send");
  let busy = Promise.resolve();

  function applyUi(ui, locale) {
    if (!ui) return;
    document.documentElement.lang = locale;
    document.documentElement.dir = locale === "ar" ? "rtl" : "ltr";
    document.title = ui.title;
    document.getElementById("title").textContent = ui.title;
    input.placeholder = ui.placeholder;
    input.setAttribute("aria-label", ui.placeholder);
    sendButton.textContent = ui.send;  // its name is what it shows (label in name)
  }

  function bubble(cls, rtl) {
    const div = document.createElement("div");
    div.className = "bubble " + cls;
    div.dir = rtl === undefined ? "auto" : (rtl ? "rtl" : "ltr");
    log.appendChild(div);
    return div;
  }

  const retired = (chip) => chip.getAttribute("aria-disabled") === "true";

  // Earlier messages' buttons stay readable but are no longer offered: out of the tab order,
  // announced as unavailable, and a click on one does nothing.
  function retireButtons() {
    for (const chip of log.querySelectorAll(".chip")) {
      chip.setAttribute("aria-disabled", "true");
      chip.tabIndex = -1;
    }
  }

  // A result's status line gets a mark drawn in CSS (.status-<mark>, chat.css) instead of its
  // emoji, an empty box where no emoji font is installed; the words say the status anyway.
  function addText(div, reply) {
    const lines = reply.text.split("\n");
    const at = reply.status ? reply.status.line : -1;
    if (at < 0 || at >= lines.length) {
      div.appendChild(document.createTextNode(reply.text));
      return;
    }
    if (at > 0) div.appendChild(document.createTextNode(lines.slice(0, at).join("\n") + "\n"));
    const line = document.createElement("span");
    line.className = "status status-" + reply.status.mark;
    line.textContent = lines[at];
    div.appendChild(line);
    const rest = lines.slice(at + 1);
    if (rest.length) div.appendChild(document.createTextNode("\n" + rest.join("\n")));
  }

  function show(reply) {
    const div = bubble("bot", reply.rtl);
    if (reply.type === "photo") {
      const img = document.createElement("img");
      // The image takes its height only once decoded: scroll again then, or the buttons
      // under it end up below the fold.
      img.addEventListener("load", scroll, { once: true });
      img.src = reply.image;
      img.alt = reply.alt || "";  // what the image is; the caption below says what to do
      div.appendChild(img);
    }
    if (reply.type === "audio") {
      // Native controls: reachable with Tab, played with Space or Enter, labelled for readers.
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "auto";
      audio.addEventListener("loadedmetadata", scroll, { once: true });
      audio.src = reply.audio;
      audio.setAttribute("aria-label", reply.label || "");
      audio.className = "clip";
      div.appendChild(audio);
    }
    addText(div, reply);
    if (reply.buttons && reply.buttons.length) {
      const chips = document.createElement("div");
      chips.className = "chips";
      for (const row of reply.buttons) {
        for (const b of row) {
          const chip = document.createElement("button");
          chip.type = "button";
          chip.className = "chip";
          chip.textContent = b.label;
          chip.addEventListener("click", () => {
            if (retired(chip)) return;
            input.focus();  // the answer to most buttons is typed next
            mine(b.label);
            send({ button: b.data });
          });
          chips.appendChild(chip);
        }
      }
      div.appendChild(chips);
    }
  }

  function mine(text) { bubble("me").textContent = text; scroll(); }
  function scroll() { log.scrollTop = log.scrollHeight; }

  function send(body) {
    busy = busy.then(async () => {
      try {
        const res = await fetch("/api/chat", {
          method: "POST", headers: { "Content-Type": "application/json" },
          credentials: "same-origin", body: JSON.stringify(body),
        });
        const data = await res.json();
        applyUi(data.ui, data.locale);
        if (data.replies && data.replies.length) retireButtons();
        for (const reply of data.replies || []) show(reply);
        if (data.error) bubble("error").textContent = data.error;
      } catch (err) {
        bubble("error").textContent = "⚠ " + err;
      }
      scroll();
    });
    return busy;
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    mine(text);
    send(text.startsWith("/") ? { command: text } : { text });
  });

  send({ command: "start" });
})();
