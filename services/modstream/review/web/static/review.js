// Review page: keys for the verdict forms, and hold-to-reveal for what is shielded.
(function () {
  "use strict";
  // The image, the text boxes over it and the text read in it: revealed together, as boxes and
  // highlights are read against each other, and one state leaves nothing half revealed.
  const shielded = document.querySelectorAll(".shielded");
  const help = document.getElementById("help");
  const revealButton = document.getElementById("reveal");

  function reveal(on) {
    for (const element of shielded) {
      element.classList.toggle("revealed", on);
      element.classList.toggle("shielded", !on);
    }
  }

  function press(id) {
    const button = document.getElementById(id);
    if (button) button.click();
  }

  function skip() {
    const form = document.getElementById("skip");
    if (form) form.requestSubmit();
  }

  document.addEventListener("keydown", function (event) {
    if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === " ") { event.preventDefault(); reveal(true); return; }
    if (event.repeat) return;
    if (event.key === "a") press("approve");
    else if (event.key === "r") press("remove");
    else if (event.key === "s") skip();
    else if (event.key === "?") { if (help) help.hidden = !help.hidden; }
    else if (event.key === "Escape" && help) help.hidden = true;
  });
  document.addEventListener("keyup", function (event) { if (event.key === " ") reveal(false); });
  window.addEventListener("blur", function () { reveal(false); });

  if (revealButton) {
    revealButton.addEventListener("pointerdown", function () { reveal(true); });
    for (const name of ["pointerup", "pointerleave", "pointercancel"]) {
      revealButton.addEventListener(name, function () { reveal(false); });
    }
  }
})();
