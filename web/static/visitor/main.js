/* The visitor panel inside the widget's iframe: opening hours, device check, the line, the
 * call, call-backs and the rating after a call. This module wires the page together: the DOM's
 * events go to the transition table (machine.js), its state to the view (view.js), its effects
 * to effects.js. */

import { wireChatForm } from "../shared/chat_view.js";
import { mediaControls } from "../shared/controls.js";
import { wirePickers } from "../shared/devices.js";
import { trapTab } from "../shared/dom.js";
import { run } from "../shared/loop.js";
import { unlock } from "../shared/sound.js";
import { fetchAvailability, visitorEffects } from "./effects.js";
import { hostPage, takePriorityToken, ticketStore } from "./host.js";
import { next } from "./machine.js";
import { initial } from "./state.js";
import { createView, findParts, paintStars } from "./view.js";

const AVAILABILITY_EVERY_MS = 30000;

const ui = findParts();
const queue = ui.body.dataset.queue || "support";
const host = hostPage(ui.body.dataset.hostOrigin || "");
const tickets = ticketStore("hd-ticket-" + queue, host);
window.hdPeer = null; // the call's RTCPeerConnection, for the browser tests' statistics

let controls = null;
const effects = visitorEffects({
  ui,
  controls: () => controls,
  host,
  tickets,
  queue,
  firstLook: fetchAvailability(queue, 2500),
});
const page = run({
  state: initial({
    queue,
    ticket: null,
    priorityToken: takePriorityToken(),
    canShare: !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia),
  }),
  next,
  render: createView(ui),
  perform: (fx) => effects.perform(fx, dispatch),
});
/** Every event carries the page's monotonic clock (`now`, ms). */
const dispatch = (event) => page.dispatch({ now: performance.now(), ...event });
controls = mediaControls({
  muteButton: ui.mute,
  cameraButton: ui.camera,
  getStream: effects.stream,
  onChange: (current) => dispatch({ type: "media_toggled", ...current }),
});

/* The host page -------------------------------------------------------------------------- */

const minimize = () => host.post({ type: "minimize" });
host.listen(
  () => dispatch({ type: "host_open" }),
  (ticket) => {
    tickets.restore(ticket);
    dispatch({ type: "ticket_restored", ticket: tickets.get() });
  },
  () => dispatch({ type: "host_hidden" }),
  (narrow) => dispatch({ type: "host_layout", narrow })
);
ui.close.addEventListener("click", minimize);
ui.callbackClose.addEventListener("click", minimize);
if (ui.minimize) ui.minimize.addEventListener("click", minimize);
for (const kind of ["pointerdown", "keydown"]) {
  document.addEventListener(kind, () => effects.gesture(), { capture: true, passive: true });
}
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && host.embedded) minimize();
});
if (host.embedded) trapTab(document.body); // Tab stays in the open panel; Escape leaves it

/* The forms and buttons ------------------------------------------------------------------ */

ui.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (ui.name.value.trim()) unlock(); // a gesture: the chime may play later
  // The page the visitor is on, as the shop's loader tells it (data-send-page); without a
  // loader, the origin the browser's referrer policy lets through, as before.
  const told = host.page();
  dispatch({ type: "submit_join", name: ui.name.value, topic: ui.topic.value, page: told !== null ? told : document.referrer });
});
ui.form.addEventListener("focusin", () => dispatch({ type: "intent" }));
ui.form.addEventListener("input", () => dispatch({ type: "intent" }));
ui.leave.addEventListener("click", () => dispatch({ type: "click_leave" }));
ui.leaveYes.addEventListener("click", () => dispatch({ type: "confirm_leave" }));
ui.leaveNo.addEventListener("click", () => dispatch({ type: "cancel_leave" }));
ui.hangup.addEventListener("click", () => dispatch({ type: "click_hangup" }));
ui.sound.addEventListener("click", () => dispatch({ type: "click_sound" }));
ui.retryMedia.addEventListener("click", () => dispatch({ type: "retry_media" }));
ui.again.addEventListener("click", () => dispatch({ type: "click_again" }));
ui.share.addEventListener("click", () => dispatch({ type: "click_share", ...controls.current() }));
ui.enlarge.addEventListener("click", () => dispatch({ type: "click_enlarge" }));
wirePickers(ui, dispatch);

/* The call's chat and files ------------------------------------------------------------- */

wireChatForm(ui, dispatch);

ui.callbackOpen.addEventListener("click", () => dispatch({ type: "open_callback", why: "offline" }));
ui.maxWaitCallback.addEventListener("click", () => dispatch({ type: "open_callback", why: "waiting" }));
ui.callbackBack.addEventListener("click", () => dispatch({ type: "callback_back" }));
ui.talkNow.addEventListener("click", () => (unlock(), dispatch({ type: "click_talk_now" })));
ui.callbackForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  dispatch({ type: "submit_callback", name: ui.cbName.value, contact: ui.cbContact.value, note: ui.cbNote.value });
});

for (const star of ui.stars) {
  const score = Number(star.dataset.score);
  star.addEventListener("click", () => dispatch({ type: "choose_score", score }));
  star.addEventListener("mouseenter", () => paintStars(ui, score));
  star.addEventListener("mouseleave", () => paintStars(ui, page.state().score));
}
ui.rating.addEventListener("submit", (ev) => {
  ev.preventDefault();
  dispatch({ type: "submit_rating", comment: ui.ratingComment.value });
});
ui.ratingSkip.addEventListener("click", () => dispatch({ type: "skip_rating" }));

/* Start ---------------------------------------------------------------------------------- */

host.post({ type: "state", phase: "checking" });
tickets.restored().then(() => dispatch({ type: "boot", ticket: tickets.get() }));
setInterval(() => dispatch({ type: "tick" }), AVAILABILITY_EVERY_MS);
