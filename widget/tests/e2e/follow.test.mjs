// "Follow my district": a citizen leaves an e-mail address without contributing (French), or after
// contributing with the pin's district chosen for them (English); the real SMTP server that
// scripts/test.sh starts (tests/smtp_sink.py) receives the confirmation link, in their language.
// The form is keyboard-usable and names what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, newPage, embedUrl, getCampaign, visibleDistrict, validAnswers, waitForWidget, mapPoint, fillForm, screenshotDir } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());
const SINK = process.env.SMTP_SINK_DIR;

/** The messages the SMTP server accepted for `to`, waiting up to 20 s for at least one. */
async function messagesTo(to) {
  assert.ok(SINK, 'SMTP_SINK_DIR is set by scripts/test.sh (the e2e server sends e-mail to tests/smtp_sink.py)');
  for (let i = 0; i < 200; i++) {
    const dir = join(SINK, 'json');
    const found = existsSync(dir)
      ? readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8'))).filter((m) => m.to.includes(to))
      : [];
    if (found.length) return found;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`no message to ${to} within 20 s`);
}

test('without contributing: the folded form under the table sends a confirmation link (French, keyboard)', async () => {
  const campaign = await getCampaign();
  assert.equal(campaign.notices, true, 'the e2e server runs with --smtp-url (scripts/test.sh)');
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=fr'));
  await waitForWidget(page);
  const box = page.locator('civicmap-map .cm-results details.cm-followbox');
  await box.locator('summary').focus();
  await page.keyboard.press('Enter');
  const email = box.getByLabel('Votre adresse e-mail');
  await email.waitFor({ timeout: 5000 });
  // A wrong address is named next to the field, and the field says it is invalid.
  await email.fill('pas-une-adresse');
  await box.getByRole('button', { name: 'Suivre' }).click();
  await box.getByText('Saisissez une adresse e-mail').waitFor({ timeout: 5000 });
  assert.equal(await email.getAttribute('aria-invalid'), 'true');
  assert.match(await email.getAttribute('aria-describedby'), /cm-follow-err/);
  const to = `e2e-${Date.now()}@example.org`;
  await email.fill(to);
  const district = box.getByLabel('Quartier', { exact: true });
  const first = await district.locator('option').nth(1).getAttribute('value');
  await district.selectOption(first);
  await email.focus();
  await page.keyboard.press('Enter');
  await box.getByRole('status').filter({ hasText: 'un lien de confirmation vient d’y être envoyé' }).waitFor({ timeout: 10000 });
  assert.equal(await email.getAttribute('aria-invalid'), 'false');
  await box.screenshot({ path: join(screenshotDir(), 'follow-fr.png') });
  const [message] = await messagesTo(to);
  assert.equal(message.headers['content-language'], 'fr');
  assert.match(message.headers.subject, /^Confirmez votre abonnement/);
  assert.match(message.text, /\/subscriptions\/confirm\?token=/);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('after contributing: the pin’s district is chosen, and the link arrives in English', async () => {
  const campaign = await getCampaign();
  const { feature, point } = await visibleDistrict(campaign);
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page);
  const { x, y } = await mapPoint(page, point);
  await page.mouse.click(x, y);
  await fillForm(page, campaign, validAnswers(campaign));
  await page.locator('civicmap-map button.cm-submit').click();
  await page.locator('civicmap-map .cm-success').waitFor({ timeout: 15000 });
  const follow = page.locator('civicmap-map .cm-panel .cm-follow');
  await follow.getByRole('heading', { name: 'Follow my district by e-mail' }).waitFor({ timeout: 5000 });
  assert.equal(await follow.getByLabel('District', { exact: true }).inputValue(), feature.properties.code, 'the pin’s district is chosen');
  const to = `e2e-en-${Date.now()}@example.org`;
  await follow.getByLabel('Your e-mail address').fill(to);
  await follow.getByRole('button', { name: 'Follow' }).click();
  await follow.getByRole('status').filter({ hasText: 'a confirmation link was just sent' }).waitFor({ timeout: 10000 });
  const [message] = await messagesTo(to);
  assert.equal(message.headers['content-language'], 'en');
  assert.match(message.headers.subject, /^Confirm your subscription/);
  assert.ok(message.headers['list-unsubscribe'], 'every message has List-Unsubscribe');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
