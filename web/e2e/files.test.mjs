// Files as people attach them: by the button, by dropping and by pasting; progress until each
// is ready; a file too large refused before it is sent; the message goes with its files (the
// model gets their text), shows them as chips and thumbnails, and opens them; accessible at
// phone and desktop widths.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFakeProvider } from "./fake-provider.mjs";
import { apiAs, axe, launchBrowser, nextAnswer, screenshot, signIn, startGateway, useFakeProvider, waitForStatus } from "./harness.mjs";

const DESKTOP = { width: 1280, height: 820 };
const PHONE = { width: 375, height: 740 };
// A 2×2 PNG: processing decodes, re-encodes and measures it.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==",
  "base64",
);
const MAX_BYTES = 200_000;

let fake, gateway, browser;

before(async () => {
  fake = await startFakeProvider();
  gateway = await startGateway({ BESTCHAT_FILES_MAX_BYTES: String(MAX_BYTES) });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  gateway?.stop();
  await fake?.close();
});

async function chatPage(viewport, user) {
  const api = await apiAs(gateway.url, user);
  await useFakeProvider(api, fake.url);
  const conv = await api.post("/api/conversations", { title: "Files", provider: "fake", model: "fake-model" });
  const c = await browser.newContext({ viewport, serviceWorkers: "block" });
  const p = await c.newPage();
  await signIn(p, gateway.url, user);
  await p.goto(`${gateway.url}/#/c/${conv.id}`);
  await p.getByLabel("Message", { exact: true }).waitFor();
  return { api, conv, p };
}

/** Drops or pastes `files` ([name, text]) on the composer as a browser would. */
async function give(p, how, files) {
  await p.evaluate(
    ({ how, files }) => {
      const dt = new DataTransfer();
      for (const [name, text] of files) dt.items.add(new File([text], name, { type: "text/plain" }));
      if (how === "drop") {
        const form = document.querySelector("form.composer");
        form.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
        form.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
      } else {
        document.querySelector("#composer").dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
      }
    },
    { how, files },
  );
}

async function allReady(p, count) {
  await p.waitForFunction(
    (n) => {
      const chips = [...document.querySelectorAll(".attachments.composing .chip")];
      return chips.length === n && chips.every((c) => c.classList.contains("ready"));
    },
    count,
    { timeout: 30_000 },
  );
}

describe("files", () => {
  it("attaches by button, drop and paste, sends them with the message, and shows and opens them", async () => {
    const { api, conv, p } = await chatPage(DESKTOP, "filer");
    // What may be attached is said before anything is.
    await p.waitForFunction(() => /Up to 10 files, 195 KB each/.test(document.querySelector("button.attach")?.title ?? ""));
    await p.locator("#attach-input").setInputFiles([
      { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("Ship on Friday, tell Ana.\n") },
      { name: "pixel.png", mimeType: "image/png", buffer: PNG },
    ]);
    await give(p, "drop", [["dropped.md", "# Dropped\nBring snacks.\n"]]);
    await give(p, "paste", [["pasted.csv", "item,cost\nlaptop,1200\n"]]);
    await allReady(p, 4);
    await screenshot(p, "files-composer-desktop");
    await axe(p, "composer with files, desktop");
    const answer = await nextAnswer(api, conv.id, async () => {
      await p.getByLabel("Message", { exact: true }).fill("What is in these?");
      await p.keyboard.press("Enter");
    });
    await waitForStatus(p, answer, "complete");
    // The model got the files' text; this model sees no images, and is told so.
    const sent = JSON.stringify(fake.requests.at(-1));
    for (const text of ["Ship on Friday", "Bring snacks", "laptop,1200", "pixel.png: an image, which this model cannot see"]) {
      assert.ok(sent.includes(text), `${text} in ${sent}`);
    }
    // The composer is empty again; the message shows its files, the image as a thumbnail.
    assert.equal(await p.locator(".attachments.composing").count(), 0);
    const chips = p.locator(".message.user .attachments .chip");
    await chips.first().waitFor();
    assert.equal(await chips.count(), 4);
    const thumb = p.locator('.message.user button[title="Open pixel.png"] img.thumb');
    await thumb.waitFor();
    await p.waitForFunction(() => document.querySelector('.message.user img.thumb')?.naturalWidth === 2);
    // Opening a file fetches it through the API's short-lived link.
    const download = p.waitForEvent("download");
    await p.getByRole("button", { name: "notes.txt" }).click();
    assert.equal((await download).suggestedFilename(), "notes.txt");
    await axe(p, "message with files, desktop");
    await screenshot(p, "files-message-desktop");
  });

  it("refuses a file too large before uploading it, and works on a phone", async () => {
    const { p } = await chatPage(PHONE, "phone-filer");
    await p.locator("#attach-input").setInputFiles([
      { name: "huge.txt", mimeType: "text/plain", buffer: Buffer.alloc(MAX_BYTES + 1, "a") },
      { name: "small.txt", mimeType: "text/plain", buffer: Buffer.from("fine\n") },
    ]);
    const failed = p.locator(".chip.failed");
    await failed.waitFor();
    assert.match(await failed.innerText(), /Larger than 195 KB/);
    await p.waitForFunction(() => document.querySelector(".chip:not(.failed)")?.classList.contains("ready"), null, { timeout: 30_000 });
    await axe(p, "composer with files, phone");
    await screenshot(p, "files-composer-phone");
    // A failed file can be removed; the ready one stays.
    await p.getByRole("button", { name: "Remove huge.txt" }).click();
    assert.equal(await p.locator(".attachments.composing .chip").count(), 1);
  });
});
