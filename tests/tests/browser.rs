//! The web page in a real headless Chromium (see `tests::browser`): sign-up and sign-in, the
//! profile and its policy and e-mail confirmation notices, the privacy settings, the session across reloads (refresh
//! cookie only; nothing in storage), account deletion, and spoken interviews over loopback
//! WebRTC with a fake microphone playing an espeak-ng WAV (a whole interview, and barge-in).
//!
//! These run on SQLite only (the PostgreSQL path is covered by the API tests). Without Chromium
//! they print a notice and pass, except under CI, where they fail.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::browser::{Browser, BrowserConfig, DEFAULT_TIMEOUT};
use tests::{Backend, PASSWORD, TestApp, spawn_app, spawn_app_with, unique_email};

/// Where the browser tests leave screenshots of the main screens (for a look by eye).
const SETTINGS_SCREENSHOT: &str = "/tmp/interviewcraft-browser-settings.png";
const PROFILE_SCREENSHOT: &str = "/tmp/interviewcraft-browser-profile.png";
const SIGNIN_SCREENSHOT: &str = "/tmp/interviewcraft-browser-signin-error.png";
const LIVE_SCREENSHOT: &str = "/tmp/interviewcraft-browser-interview-live.png";
const RESULT_SCREENSHOT: &str = "/tmp/interviewcraft-browser-interview-result.png";
const SKILLS_SCREENSHOT: &str = "/tmp/interviewcraft-browser-skills.png";

/// A browser showing the page of `app`, ready (signed out or restored), or `None` to skip.
async fn open_page(app: &TestApp) -> Option<Browser> {
    let browser = Browser::launch_for_test(BrowserConfig::default()).await?;
    eprintln!("browser started in {:?}", browser.startup_time());
    browser.goto(&app.url("/")).await.expect("the page loads");
    wait_ready(&browser).await;
    Some(browser)
}

async fn wait_ready(browser: &Browser) {
    browser
        .wait_until("document.body.dataset.ready === 'true'", DEFAULT_TIMEOUT)
        .await
        .expect("the page finishes loading");
}

/// Waits until the screen `view` (profile, settings, signin, …) is shown and loaded.
async fn wait_view(browser: &Browser, view: &str) {
    browser
        .wait_until(
            &format!(
                "document.body.dataset.ready === 'true' && document.body.dataset.view === '{view}'"
            ),
            DEFAULT_TIMEOUT,
        )
        .await
        .unwrap_or_else(|error| panic!("the {view} screen appears: {error:#}"));
}

/// The text content of an element (also when hidden).
async fn text_of(browser: &Browser, css: &str) -> String {
    let value = browser
        .eval(&format!(
            "const e = document.querySelector({css:?}); return e ? e.textContent : null;"
        ))
        .await
        .expect("script runs");
    value
        .as_str()
        .unwrap_or_else(|| panic!("no element {css}"))
        .to_owned()
}

/// Waits until the error box of `container` shows a message, and returns it.
async fn form_error(browser: &Browser, container: &str) -> String {
    let css = format!("{container} .form-error");
    browser
        .wait_until(
            &format!("(() => {{ const e = document.querySelector({css:?}); return e && !e.hidden && e.textContent; }})()"),
            DEFAULT_TIMEOUT,
        )
        .await
        .unwrap_or_else(|error| panic!("an error appears in {container}: {error:#}"))
        .as_str()
        .expect("text")
        .to_owned()
}

/// Waits until the confirmation next to the buttons of `container` reads something.
async fn saved_message(browser: &Browser, container: &str) -> String {
    let css = format!("{container} .saved");
    browser
        .wait_until(
            &format!("(() => {{ const e = document.querySelector({css:?}); return e && e.textContent; }})()"),
            DEFAULT_TIMEOUT,
        )
        .await
        .unwrap_or_else(|error| panic!("a confirmation appears in {container}: {error:#}"))
        .as_str()
        .expect("text")
        .to_owned()
}

async fn notice(browser: &Browser) -> String {
    browser
        .wait_until(
            "(() => { const e = document.querySelector('#notice'); return !e.hidden && e.textContent; })()",
            DEFAULT_TIMEOUT,
        )
        .await
        .expect("a notice appears")
        .as_str()
        .expect("text")
        .to_owned()
}

/// Signs in through the form and waits for the profile.
async fn sign_in(browser: &Browser, email: &str, password: &str) {
    wait_view(browser, "signin").await;
    browser.fill("#signin-email", email).await.expect("email");
    browser
        .fill("#signin-password", password)
        .await
        .expect("password");
    browser
        .click("#signin-form button[type=submit]")
        .await
        .expect("submit");
    wait_view(browser, "profile").await;
}

/// Registers an account over the API (the page's sign-up has a test of its own).
async fn registered(app: &TestApp) -> String {
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status(), 201);
    email
}

/// A fresh access token for API-side checks (signs in separately from the browser).
async fn api_token(app: &TestApp, email: &str, password: &str) -> String {
    let response = app.login(email, password).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// What the page keeps where scripts and other pages could read it.
async fn assert_nothing_in_storage(browser: &Browser) {
    let state = browser
        .eval(
            "const jwtLike = (v) => typeof v === 'string' && /eyJ[\\w-]+\\.[\\w-]+\\./.test(v);
             const globals = Object.keys(window).filter((k) => { try { return jwtLike(window[k]); } catch { return false; } });
             return {
               local: localStorage.length,
               session: sessionStorage.length,
               cookie: document.cookie,
               html_has_token: jwtLike(document.documentElement.outerHTML),
               window_name: window.name,
               globals: globals.length,
             };",
        )
        .await
        .expect("script runs");
    assert_eq!(state["local"], 0, "localStorage is empty");
    assert_eq!(state["session"], 0, "sessionStorage is empty");
    let cookie = state["cookie"].as_str().expect("document.cookie");
    assert!(
        !cookie.contains("refresh_token") && !cookie.contains("eyJ"),
        "document.cookie holds no token"
    );
    assert_eq!(state["html_has_token"], false, "no token in the DOM");
    assert_eq!(state["window_name"], "", "nothing in window.name");
    assert_eq!(state["globals"], 0, "no token in a global variable");
}

#[actix_web::test]
async fn browser_sign_up_sign_in_and_see_profile() {
    let started = Instant::now();
    let app = spawn_app(Backend::Sqlite).await;
    let Some(browser) = open_page(&app).await else {
        return;
    };
    wait_view(&browser, "signin").await;
    assert!(
        text_of(&browser, "#view-signin h1")
            .await
            .contains("Sign in")
    );
    assert_eq!(
        browser
            .eval("return document.body.dataset.session")
            .await
            .unwrap(),
        "signed-out"
    );

    // Sign up, reading the privacy policy on the way.
    browser.click("a[href='#/signup']").await.unwrap();
    wait_view(&browser, "signup").await;
    let taken = registered(&app).await;
    let email = unique_email();
    browser.fill("#signup-email", &taken).await.unwrap();
    browser.fill("#signup-name", "Ada").await.unwrap();
    browser.fill("#signup-password", PASSWORD).await.unwrap();
    browser.click("#signup-policy-link").await.unwrap();
    wait_view(&browser, "policy").await;
    let policy = text_of(&browser, "#policy-body").await;
    assert!(policy.contains("bcrypt"), "the policy text is shown");
    assert!(
        text_of(&browser, "#policy-meta")
            .await
            .contains(api::policy::INITIAL_VERSION)
    );
    browser.click("#policy-back").await.unwrap();
    wait_view(&browser, "signup").await;
    let kept = browser
        .eval("return document.querySelector('#signup-name').value")
        .await
        .unwrap();
    assert_eq!(kept, "Ada", "the form keeps its values across the policy");

    // The age confirmation is required; then the server's errors are shown with their code.
    browser
        .click("#signup-form button[type=submit]")
        .await
        .unwrap();
    assert!(form_error(&browser, "#signup-form").await.contains("16"));
    browser.click("#signup-age").await.unwrap();
    browser
        .click("#signup-form button[type=submit]")
        .await
        .unwrap();
    browser
        .wait_until(
            "document.querySelector('#signup-form .form-error').textContent.includes('email_taken')",
            DEFAULT_TIMEOUT,
        )
        .await
        .expect("a taken e-mail is reported with its code");
    browser.fill("#signup-email", &email).await.unwrap();
    browser
        .click("#signup-form button[type=submit]")
        .await
        .unwrap();
    wait_view(&browser, "profile").await;
    assert!(notice(&browser).await.contains("Welcome"));
    assert!(text_of(&browser, "#profile-email").await == email);
    assert_eq!(text_of(&browser, "#profile-name").await, "Ada");
    assert!(
        text_of(&browser, "#profile-policy")
            .await
            .contains(api::policy::INITIAL_VERSION)
    );
    browser
        .save_screenshot(std::path::Path::new(PROFILE_SCREENSHOT))
        .await
        .unwrap();
    assert_eq!(
        browser
            .eval("return document.body.dataset.session")
            .await
            .unwrap(),
        "signed-in"
    );
    assert!(
        browser
            .find("#nav")
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    // The interview screens are reachable from the navigation.
    assert!(
        browser
            .find("[data-feature=interview]")
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    // Sign out, then a wrong password, then the right one.
    browser.click("#sign-out").await.unwrap();
    wait_view(&browser, "signin").await;
    assert!(notice(&browser).await.contains("signed out"));
    browser.fill("#signin-email", &email).await.unwrap();
    browser
        .fill("#signin-password", "not the right password")
        .await
        .unwrap();
    browser
        .click("#signin-form button[type=submit]")
        .await
        .unwrap();
    let error = form_error(&browser, "#signin-form").await;
    assert!(
        error.contains("invalid_credentials"),
        "error shown: {error}"
    );
    browser
        .save_screenshot(std::path::Path::new(SIGNIN_SCREENSHOT))
        .await
        .unwrap();
    sign_in(&browser, &email, PASSWORD).await;
    assert!(text_of(&browser, "#profile-email").await == email);

    let logs = tests::captured_logs();
    assert!(
        !logs.contains(&email) && !logs.contains(&taken),
        "no e-mail logged"
    );
    assert!(!logs.contains(PASSWORD), "no password logged");
    browser.close().await.expect("the browser closes");
    eprintln!(
        "browser_sign_up_sign_in_and_see_profile: {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn browser_settings_change_consent_and_store_a_key_showing_only_last_four() {
    let started = Instant::now();
    let app = spawn_app(Backend::Sqlite).await;
    let Some(browser) = open_page(&app).await else {
        return;
    };
    let email = registered(&app).await;
    sign_in(&browser, &email, PASSWORD).await;
    browser.click("a[data-nav=settings]").await.unwrap();
    wait_view(&browser, "settings").await;

    // Every control of every screen has a label (the screens all live in the document).
    let unlabelled = browser
        .eval(
            "return Array.from(document.querySelectorAll('input, select, textarea, button'))
               .filter((e) => e.type === 'submit' || e.tagName === 'BUTTON'
                 ? !(e.textContent.trim() || e.getAttribute('aria-label'))
                 : e.labels.length === 0 && !e.getAttribute('aria-label'))
               .map((e) => e.id || e.name);",
        )
        .await
        .unwrap();
    assert_eq!(
        unlabelled,
        serde_json::json!([]),
        "controls without a label"
    );

    // Defaults: digest and training off, skill tracking on.
    let checked = |id: &str| format!("return document.querySelector('#{id}').checked");
    assert_eq!(
        browser.eval(&checked("consent-digest")).await.unwrap(),
        false
    );
    assert_eq!(
        browser.eval(&checked("consent-training")).await.unwrap(),
        false
    );
    assert_eq!(
        browser.eval(&checked("consent-skills")).await.unwrap(),
        true
    );
    assert!(
        text_of(&browser, "#consent-skills-hint")
            .await
            .contains("deletes the history")
    );

    // Opt in to the digest, object to skill tracking, pick a voice.
    browser.click("#consent-digest").await.unwrap();
    browser.click("#consent-skills").await.unwrap();
    browser.select("#voice", "warm").await.unwrap();
    // The date of the real interview paces the drill plan (set as the date picker would).
    browser
        .eval("document.querySelector('#target-date').value = '2030-01-15'; return true")
        .await
        .unwrap();
    browser
        .click("#consent-form button[type=submit]")
        .await
        .unwrap();
    assert_eq!(saved_message(&browser, "#consent-form").await, "Saved.");
    let token = api_token(&app, &email, PASSWORD).await;
    let settings: Value = app
        .get_as("/api/v1/settings", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["digest_opt_in"], true);
    assert_eq!(settings["training_opt_in"], false);
    assert_eq!(settings["skill_tracking"], false);
    assert_eq!(settings["interviewer_voice"], "warm");
    assert_eq!(settings["target_interview_date"], "2030-01-15");
    assert_eq!(
        browser
            .eval("return document.querySelector('#target-date').value")
            .await
            .unwrap(),
        "2030-01-15",
        "the saved date is shown back"
    );

    // A key the server refuses: its message and code are shown.
    browser
        .fill("#key-value", "has spaces so it is not a key")
        .await
        .unwrap();
    browser
        .click("#key-form button[type=submit]")
        .await
        .unwrap();
    let error = form_error(&browser, "#key-form").await;
    assert!(error.contains("printable"), "error shown: {error}");

    // A real-looking key: stored, shown as its last four only, and gone from the input.
    let key = "dg-live-0123456789abcdefWXYZ";
    browser.select("#key-provider", "deepgram").await.unwrap();
    browser.fill("#key-value", key).await.unwrap();
    browser
        .click("#key-form button[type=submit]")
        .await
        .unwrap();
    assert_eq!(saved_message(&browser, "#key-form").await, "Key saved.");
    assert_eq!(
        text_of(&browser, "tr[data-provider=deepgram] .last-four").await,
        "WXYZ"
    );
    let page = browser
        .eval("return document.documentElement.outerHTML + '|' + document.querySelector('#key-value').value")
        .await
        .unwrap();
    let page = page.as_str().unwrap();
    assert!(!page.contains(key), "the key is not in the page");
    assert!(
        !page.contains("0123456789abcdef"),
        "no part beyond the last four"
    );
    assert!(
        text_of(&browser, "tr[data-provider=anthropic]")
            .await
            .contains("not set")
    );
    let keys: Value = app
        .get_as("/api/v1/settings/keys", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["provider"], "deepgram");
    assert_eq!(keys["keys"][0]["last_four"], "WXYZ");

    // The screenshot of the signed-in settings page (whole page).
    let height = browser
        .eval("return document.documentElement.scrollHeight")
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(2000);
    browser
        .set_window_size(1280, (height as u32 + 120).min(4000))
        .await
        .unwrap();
    browser.eval("window.scrollTo(0, 0)").await.unwrap();
    browser
        .save_screenshot(std::path::Path::new(SETTINGS_SCREENSHOT))
        .await
        .unwrap();
    eprintln!("settings screenshot: {SETTINGS_SCREENSHOT}");

    // After a reload the choices come back from the server.
    browser.reload().await.unwrap();
    wait_view(&browser, "settings").await;
    assert_eq!(
        browser.eval(&checked("consent-digest")).await.unwrap(),
        true
    );
    assert_eq!(
        browser.eval(&checked("consent-skills")).await.unwrap(),
        false
    );
    assert_eq!(
        browser
            .eval("return document.querySelector('#voice').value")
            .await
            .unwrap(),
        "warm"
    );

    // Delete the key again.
    browser
        .click("tr[data-provider=deepgram] button")
        .await
        .unwrap();
    assert_eq!(
        saved_message(&browser, "#key-form").await,
        "Deepgram key deleted."
    );
    assert!(
        text_of(&browser, "tr[data-provider=deepgram]")
            .await
            .contains("not set")
    );
    assert_eq!(app.count_rows("byok_keys").await, 0);

    // The export downloads (fetched with the in-memory token).
    browser.click("#export-button").await.unwrap();
    let export = saved_message(&browser, "#export-card").await;
    assert!(export.starts_with("Export ready"), "export: {export}");

    // Nothing the page sent reached the server's logs.
    let logs = tests::captured_logs();
    assert!(!logs.is_empty(), "logs are captured");
    assert!(
        !logs.contains(key) && !logs.contains("0123456789abcdef"),
        "the key is not logged"
    );
    assert!(
        !logs.contains(&email) && !logs.contains(PASSWORD),
        "no e-mail or password logged"
    );

    browser.close().await.unwrap();
    eprintln!(
        "browser_settings_change_consent_and_store_a_key_showing_only_last_four: {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn browser_session_survives_reload_via_refresh_cookie_and_no_token_in_storage() {
    let started = Instant::now();
    let app = spawn_app(Backend::Sqlite).await;
    let Some(browser) = open_page(&app).await else {
        return;
    };
    let email = registered(&app).await;
    sign_in(&browser, &email, PASSWORD).await;
    assert_nothing_in_storage(&browser).await;

    // A reload loses the in-memory token; the HttpOnly cookie brings the session back.
    browser.reload().await.unwrap();
    wait_view(&browser, "profile").await;
    assert!(text_of(&browser, "#profile-email").await == email);
    assert_nothing_in_storage(&browser).await;

    // Again, on another screen (the rotated cookie works too).
    browser.click("a[data-nav=settings]").await.unwrap();
    wait_view(&browser, "settings").await;
    browser.reload().await.unwrap();
    wait_view(&browser, "settings").await;
    assert_eq!(
        browser
            .eval("return document.body.dataset.session")
            .await
            .unwrap(),
        "signed-in"
    );
    assert_nothing_in_storage(&browser).await;

    // Signing out revokes the cookie: a reload stays signed out.
    browser.click("#sign-out").await.unwrap();
    wait_view(&browser, "signin").await;
    browser.reload().await.unwrap();
    wait_view(&browser, "signin").await;
    assert_eq!(
        browser
            .eval("return document.body.dataset.session")
            .await
            .unwrap(),
        "signed-out"
    );
    assert!(
        !browser
            .find("#nav")
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    assert_nothing_in_storage(&browser).await;

    browser.close().await.unwrap();
    eprintln!(
        "browser_session_survives_reload_via_refresh_cookie_and_no_token_in_storage: {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn browser_refreshes_the_access_token_before_it_expires() {
    let started = Instant::now();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.access_token_ttl_secs = 4;
    })
    .await;
    let Some(browser) = open_page(&app).await else {
        return;
    };
    let email = registered(&app).await;
    sign_in(&browser, &email, PASSWORD).await;
    let sessions = app.count_rows("refresh_tokens").await;

    // With a 4 s token the page refreshes on its own about every 3.2 s. Nothing is clicked
    // meanwhile, so only its timer can rotate the session (never a 401 and a retry).
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.count_rows("refresh_tokens").await < sessions + 2 {
        assert!(
            Instant::now() < deadline,
            "the page rotates its session twice within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.click("a[data-nav=settings]").await.unwrap();
    wait_view(&browser, "settings").await;
    assert_eq!(
        browser
            .eval("return document.body.dataset.session")
            .await
            .unwrap(),
        "signed-in"
    );
    assert_eq!(
        browser
            .eval("return document.querySelector('#notice').hidden")
            .await
            .unwrap(),
        true,
        "no 'session ended' notice"
    );

    browser.close().await.unwrap();
    eprintln!(
        "browser_refreshes_the_access_token_before_it_expires: {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn browser_profile_announces_an_upcoming_policy_and_accepts_it() {
    let started = Instant::now();
    let app = spawn_app(Backend::Sqlite).await;
    let now = chrono::Utc::now();
    api::policy::publish(
        &app.db,
        api::policy::NewPolicy {
            version: "2027-01".to_owned(),
            title: "InterviewCraft privacy policy".to_owned(),
            summary: "Usage logs are now kept for 60 days.".to_owned(),
            body: "# Policy 2027-01\n\n- **Usage logs.** 60 days.\n".to_owned(),
            effective_at: now + chrono::Duration::days(20),
        },
        now,
    )
    .await
    .expect("publish an upcoming version");
    let Some(browser) = open_page(&app).await else {
        return;
    };
    let email = registered(&app).await;
    sign_in(&browser, &email, PASSWORD).await;

    let notice_css = "#policy-notices [data-policy-version='2027-01']";
    browser
        .wait_visible(notice_css, DEFAULT_TIMEOUT)
        .await
        .unwrap();
    assert!(text_of(&browser, notice_css).await.contains("60 days"));
    let accepted = app.count_rows("policy_acceptances").await;
    browser
        .click(&format!("{notice_css} button"))
        .await
        .unwrap();
    assert!(
        saved_message(&browser, notice_css)
            .await
            .contains("accepted version 2027-01")
    );
    assert_eq!(app.count_rows("policy_acceptances").await, accepted + 1);

    // The public policy screen shows the announced version too.
    browser.click(".site-footer a").await.unwrap();
    wait_view(&browser, "policy").await;
    assert!(
        text_of(&browser, "#policy-upcoming")
            .await
            .contains("2027-01")
    );

    browser.close().await.unwrap();
    eprintln!(
        "browser_profile_announces_an_upcoming_policy_and_accepts_it: {:?}",
        started.elapsed()
    );
}

/// With `SMTP_URL` the profile asks to confirm the address until the link is followed, and its
/// button mails a new link (refused, and said, within a minute of the last).
#[actix_web::test]
async fn browser_profile_asks_to_confirm_the_email_and_sends_the_link_again() {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let sink = tests::smtp_sink::SmtpSink::start().await.expect("sink");
    let url = sink.url();
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.smtp_url = Some(url.into());
    })
    .await;
    let Some(browser) = open_page(&app).await else {
        return;
    };
    let email = registered(&app).await;
    sign_in(&browser, &email, PASSWORD).await;
    let css = "#verification-notice .verification-notice";
    browser.wait_visible(css, DEFAULT_TIMEOUT).await.unwrap();
    assert!(text_of(&browser, css).await.contains(&email));

    // The sign-up's link went out just now: another within the minute is refused, and said.
    browser.click(&format!("{css} button")).await.unwrap();
    assert!(
        form_error(&browser, css)
            .await
            .contains("verification_resend_limited")
    );
    // Once the last link is over a minute old, the button mails a new one.
    entities::email_verifications::Entity::update_many()
        .col_expr(
            entities::email_verifications::Column::CreatedAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(2)),
        )
        .filter(entities::email_verifications::Column::UsedAt.is_null())
        .exec(&app.db)
        .await
        .expect("age the link");
    browser.click(&format!("{css} button")).await.unwrap();
    assert!(saved_message(&browser, css).await.contains("on its way"));
    sink.wait_for(2, Duration::from_secs(30)).await;
    let mails = sink.mails_to(&email);
    assert_eq!(mails.len(), 2);

    // Following the newest link, the profile stops asking.
    let text = mails[1].text();
    let link = text
        .lines()
        .find(|line| line.contains("/api/v1/auth/verify-email?token="))
        .expect("a link")
        .trim();
    let response = app.client.get(link).send().await.expect("the link");
    assert_eq!(response.status(), 200);
    browser.reload().await.unwrap();
    wait_view(&browser, "profile").await;
    assert_eq!(
        browser
            .eval("return document.querySelector('#verification-notice').children.length;")
            .await
            .unwrap(),
        0
    );
    browser.close().await.unwrap();
}

#[actix_web::test]
async fn browser_delete_account() {
    let started = Instant::now();
    let app = spawn_app(Backend::Sqlite).await;
    let Some(browser) = open_page(&app).await else {
        return;
    };
    let email = registered(&app).await;
    sign_in(&browser, &email, PASSWORD).await;
    browser.click("a[data-nav=settings]").await.unwrap();
    wait_view(&browser, "settings").await;

    // Both the confirmation box and the right password are required.
    browser
        .fill("#delete-password", "not the right password")
        .await
        .unwrap();
    browser
        .click("#delete-form button[type=submit]")
        .await
        .unwrap();
    assert!(
        form_error(&browser, "#delete-form")
            .await
            .contains("Tick the box")
    );
    browser.click("#delete-confirm").await.unwrap();
    browser
        .click("#delete-form button[type=submit]")
        .await
        .unwrap();
    browser
        .wait_until(
            "document.querySelector('#delete-form .form-error').textContent.includes('forbidden')",
            DEFAULT_TIMEOUT,
        )
        .await
        .expect("a wrong password is refused with its code");
    assert_eq!(app.count_rows("accounts").await, 1);

    browser.fill("#delete-password", PASSWORD).await.unwrap();
    browser
        .click("#delete-form button[type=submit]")
        .await
        .unwrap();
    wait_view(&browser, "signin").await;
    assert!(notice(&browser).await.contains("deleted"));
    assert_eq!(app.count_rows("accounts").await, 0);
    assert_eq!(
        browser
            .eval("return document.body.dataset.session")
            .await
            .unwrap(),
        "signed-out"
    );

    // The cookie was cleared and revoked: a reload stays signed out, and the account is gone.
    browser.reload().await.unwrap();
    wait_view(&browser, "signin").await;
    browser.fill("#signin-email", &email).await.unwrap();
    browser.fill("#signin-password", PASSWORD).await.unwrap();
    browser
        .click("#signin-form button[type=submit]")
        .await
        .unwrap();
    assert!(
        form_error(&browser, "#signin-form")
            .await
            .contains("invalid_credentials")
    );

    browser.close().await.unwrap();
    eprintln!("browser_delete_account: {:?}", started.elapsed());
}

/// Not a browser test: the page and its files carry the security headers the browser relies on.
#[actix_web::test]
async fn page_and_assets_are_served_with_strict_security_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    for (path, content_type) in [
        ("/", "text/html"),
        ("/static/app.js", "text/javascript"),
        ("/static/app.css", "text/css"),
        ("/static/icon.svg", "image/svg+xml"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{path}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let etag = header("etag");
        assert!(etag.starts_with('"'), "{path} has an ETag");

        // Revalidation costs a 304 with the same headers and no body.
        let response = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 304, "{path}");
        assert!(response.headers().contains_key("content-security-policy"));
    }
    let response = app.client.head(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200, "HEAD /");
    assert!(response.headers().contains_key("content-security-policy"));
    let response = app.get("/static/index.html").await;
    assert_eq!(response.status(), 404);
    let response = app.get("/static/../Cargo.toml").await;
    assert_eq!(response.status(), 404);
}

#[actix_web::test]
async fn browser_change_email_and_password_keep_the_page_signed_in() {
    let started = Instant::now();
    let app = spawn_app(Backend::Sqlite).await;
    let Some(browser) = open_page(&app).await else {
        return;
    };
    let email = registered(&app).await;
    sign_in(&browser, &email, PASSWORD).await;
    browser.click("a[data-nav=settings]").await.unwrap();
    wait_view(&browser, "settings").await;

    // A wrong current password is refused with the server's message.
    let new_email = unique_email();
    browser.fill("#email-new", &new_email).await.unwrap();
    browser
        .fill("#email-password", "not the right password")
        .await
        .unwrap();
    browser
        .click("#email-form button[type=submit]")
        .await
        .unwrap();
    assert!(
        form_error(&browser, "#email-form")
            .await
            .contains("current password is incorrect")
    );
    browser.fill("#email-password", PASSWORD).await.unwrap();
    browser
        .click("#email-form button[type=submit]")
        .await
        .unwrap();
    assert!(
        saved_message(&browser, "#email-form")
            .await
            .starts_with("Your e-mail address is now")
    );

    // A password change revokes every session; the page signs in again with the new one.
    let new_password = "a new and longer passphrase";
    browser.fill("#password-current", PASSWORD).await.unwrap();
    browser.fill("#password-new", new_password).await.unwrap();
    browser
        .fill("#password-repeat", "something else entirely")
        .await
        .unwrap();
    browser
        .click("#password-form button[type=submit]")
        .await
        .unwrap();
    assert!(
        form_error(&browser, "#password-form")
            .await
            .contains("differ")
    );
    browser
        .fill("#password-repeat", new_password)
        .await
        .unwrap();
    browser
        .click("#password-form button[type=submit]")
        .await
        .unwrap();
    assert!(
        saved_message(&browser, "#password-form")
            .await
            .starts_with("Password changed")
    );

    // Still signed in after a reload (the new cookie), as the new address.
    browser.reload().await.unwrap();
    wait_view(&browser, "settings").await;
    browser.click("a[data-nav=profile]").await.unwrap();
    wait_view(&browser, "profile").await;
    assert!(text_of(&browser, "#profile-email").await == new_email);
    assert_eq!(app.login(&email, PASSWORD).await.status(), 401);
    assert_eq!(app.login(&new_email, new_password).await.status(), 200);

    browser.close().await.unwrap();
    eprintln!(
        "browser_change_email_and_password_keep_the_page_signed_in: {:?}",
        started.elapsed()
    );
}

/// The harness's fake microphone: a spoken WAV made with
/// espeak-ng and sox reaches `getUserMedia` on the page's origin, whose Permissions-Policy
/// allows the microphone.
#[actix_web::test]
async fn browser_fake_microphone_plays_a_spoken_wav() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    if let Err(error) = tests::browser::speech_wav(
        "I led a migration of our billing service to Postgres",
        &wav,
        0.2,
        0.5,
    ) {
        assert!(
            std::env::var_os("CI").is_none(),
            "espeak-ng and sox are needed under CI: {error:#}"
        );
        eprintln!("notice: skipping the fake microphone test: {error:#}");
        return;
    }
    let config = BrowserConfig {
        fake_audio_wav: Some(wav),
        ..BrowserConfig::default()
    };
    let Some(browser) = Browser::launch_for_test(config).await else {
        return;
    };
    browser.goto(&app.url("/")).await.unwrap();
    wait_ready(&browser).await;
    let result = browser
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1];
             (async () => {
               const stream = await navigator.mediaDevices.getUserMedia({ audio: {
                 echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
               const context = new AudioContext();
               const analyser = context.createAnalyser();
               analyser.fftSize = 2048;
               context.createMediaStreamSource(stream).connect(analyser);
               const samples = new Float32Array(analyser.fftSize);
               let peak = 0;
               const start = performance.now();
               while (performance.now() - start < 2500) {
                 await new Promise((resolve) => setTimeout(resolve, 50));
                 analyser.getFloatTimeDomainData(samples);
                 let sum = 0;
                 for (const v of samples) sum += v * v;
                 peak = Math.max(peak, Math.sqrt(sum / samples.length));
               }
               stream.getTracks().forEach((track) => track.stop());
               await context.close();
               done({ peak });
             })().catch((error) => done({ error: String(error) }));",
            Vec::new(),
        )
        .await
        .expect("the capture script runs");
    assert!(
        result["error"].is_null(),
        "getUserMedia: {}",
        result["error"]
    );
    let peak = result["peak"].as_f64().expect("peak");
    eprintln!("fake microphone RMS peak: {peak:.3}");
    assert!(
        peak > 0.02,
        "the microphone carries the speech (RMS {peak})"
    );
    browser.close().await.unwrap();
}

/// The harness itself: dropping a browser without closing it (as a panicking test does) leaves
/// no chromedriver or Chromium process behind.
#[actix_web::test]
async fn browser_harness_leaves_no_process_behind_when_dropped() {
    let Some(browser) = Browser::launch_for_test(BrowserConfig::default()).await else {
        return;
    };
    browser.goto("about:blank").await.unwrap();
    let group = browser.process_group();
    let running = tests::browser::live_processes_in_group(group);
    assert!(
        running >= 2,
        "chromedriver and Chromium run in one group ({running})"
    );
    drop(browser);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = tests::browser::live_processes_in_group(group);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} processes left behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a browser interview run measured.
struct BrowserCall {
    browser: Browser,
    email: String,
    /// From the click on "Start the interview" to `connectionState === 'connected'`.
    connect_time: Duration,
    started: Instant,
}

/// A WAV of `text` with `lead_in` seconds of silence first, or `None` to skip (outside CI).
fn spoken_wav(
    dir: &std::path::Path,
    text: &str,
    lead_in: f32,
    tail: f32,
) -> Option<std::path::PathBuf> {
    let wav = dir.join("speech.wav");
    match tests::browser::speech_wav(text, &wav, lead_in, tail) {
        Ok(()) => Some(wav),
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "espeak-ng and sox are needed under CI: {error:#}"
            );
            eprintln!("notice: skipping a browser interview test: {error:#}");
            None
        }
    }
}

/// What the page's microphone plays.
enum Microphone {
    /// Chromium's fake capture device plays the WAV from the moment the live screen captures it.
    File(std::path::PathBuf),
    /// Silence until the test calls [`Browser::speak_into_microphone`].
    Scripted,
}

/// Signs in through the page, chooses an interview, passes the microphone check and starts the
/// call; returns once WebRTC is connected.
async fn start_browser_interview(
    app: &TestApp,
    microphone: Microphone,
    headphones: bool,
) -> Option<BrowserCall> {
    let email = registered(app).await;
    let scripted = matches!(microphone, Microphone::Scripted);
    let config = BrowserConfig {
        fake_audio_wav: match microphone {
            Microphone::File(wav) => Some(wav),
            Microphone::Scripted => None,
        },
        ..BrowserConfig::default()
    };
    let browser = Browser::launch_for_test(config).await?;
    let started = Instant::now();
    browser.goto(&app.url("/")).await.expect("the page loads");
    wait_ready(&browser).await;
    sign_in(&browser, &email, PASSWORD).await;
    if scripted {
        browser
            .install_scripted_microphone()
            .await
            .expect("the scripted microphone");
    }

    browser
        .click("a[data-nav=interview]")
        .await
        .expect("the Interview link");
    wait_view(&browser, "interview").await;
    // Keyless local mode is announced.
    let local_mode = browser
        .eval("return !document.querySelector('#view-interview .local-mode').hidden;")
        .await
        .unwrap();
    assert_eq!(local_mode, Value::Bool(true), "the local-mode notice shows");
    browser
        .select("#interview-kind", "technical")
        .await
        .expect("kind");
    browser
        .fill("#interview-role", "Backend engineer")
        .await
        .expect("role");
    browser
        .click("#interview-form button[type=submit]")
        .await
        .expect("submit");
    wait_view(&browser, "mic").await;
    browser
        .wait_until(
            "document.querySelector('#mic-status').textContent === 'Microphone on.'",
            DEFAULT_TIMEOUT,
        )
        .await
        .expect("the microphone check runs");

    if headphones {
        // No echo cancellation: Chromium's would suppress the fake microphone while the
        // interviewer's audio plays (double talk), which is exactly when barge-in happens.
        browser.click("#mic-headphones").await.expect("headphones");
        browser
            .wait_until(
                "document.querySelector('#mic-status').textContent === 'Microphone on.'",
                DEFAULT_TIMEOUT,
            )
            .await
            .expect("the microphone check restarts");
    }
    let clicked = Instant::now();
    browser.click("#mic-start").await.expect("start");
    browser
        .wait_until(
            "document.body.dataset.connection === 'connected'",
            Duration::from_secs(20),
        )
        .await
        .expect("the call connects");
    let connect_time = clicked.elapsed();
    eprintln!("browser call connected {connect_time:?} after the click");
    Some(BrowserCall {
        browser,
        email,
        connect_time,
        started,
    })
}

/// The live transcript's text once `condition` (a JS expression over `t`, the transcript list)
/// holds.
async fn wait_transcript(browser: &Browser, condition: &str, timeout: Duration) -> String {
    let expression = format!(
        "(() => {{ const t = document.querySelector('#live-transcript'); \
         return ({condition}) ? t.textContent : false; }})()"
    );
    match browser.wait_until(&expression, timeout).await {
        Ok(value) => value.as_str().unwrap_or_default().to_owned(),
        Err(error) => {
            let shown = browser
                .eval("return document.querySelector('#live-transcript').textContent + ' | state ' + document.body.dataset.interviewState;")
                .await
                .unwrap_or_default();
            panic!("the live transcript: {error:#}; it shows {shown}");
        }
    }
}

/// The page's connection details (from `RTCPeerConnection.getStats()`).
async fn live_stats(browser: &Browser) -> Value {
    browser
        .eval("return Object.assign({}, document.querySelector('#live-stats').dataset);")
        .await
        .expect("stats")
}

/// The total energy of the audio the page has received so far (`audioEnergy` of
/// [`live_stats`]; 0 when the page reports none).
async fn inbound_audio_energy(browser: &Browser) -> f64 {
    let stats = live_stats(browser).await;
    stats["audioEnergy"]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Ends the call with the End button and waits for the stored transcript screen.
async fn end_and_show_result(browser: &Browser) {
    browser.click("#live-end").await.expect("end");
    browser
        .wait_until(
            "document.body.dataset.view === 'result' && document.body.dataset.ready === 'true' \
             && document.querySelectorAll('#result-transcript li').length > 0",
            Duration::from_secs(30),
        )
        .await
        .expect("the transcript screen after the end");
}

/// A whole spoken interview in a real Chromium over loopback WebRTC: the fake microphone says
/// a sentence after the greeting; the server's fake STT receives it; the page shows the
/// scripted conversation live; the browser plays the interviewer's audio; the stored
/// transcript and per-turn latency appear after the end.
#[actix_web::test]
async fn browser_holds_a_spoken_interview_over_loopback_webrtc() {
    let _slot = tests::browser::one_spoken_call_at_a_time().await;
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    // The greeting takes about 7 s in local mode; the answer starts after it.
    let (lead_in, tail) = (9.0f32, 2.5f32);
    let Some(wav) = spoken_wav(
        dir.path(),
        "I led a migration of our billing service to Postgres",
        lead_in,
        tail,
    ) else {
        return;
    };
    let wav_seconds = tests::browser::wav_duration(&wav).expect("wav header");
    let speech_seconds = wav_seconds - f64::from(lead_in) - f64::from(tail);
    // Every call of this binary holds the slot, so the process-wide counts are this call's.
    let (wideband_before, wider_before) = engine::transport::inbound::packets_by_band();
    let Some(call) = start_browser_interview(&app, Microphone::File(wav), false).await else {
        return;
    };
    let browser = &call.browser;

    // The greeting, the candidate's (local-mode) words, and the scripted reply.
    let shown = wait_transcript(
        browser,
        "[...t.querySelectorAll('li[data-speaker=candidate]')].some((l) => l.textContent.includes('local mode')) \
         && t.querySelectorAll('li[data-speaker=interviewer]').length >= 2 \
         && document.body.dataset.interviewState === 'listening'",
        Duration::from_secs(50),
    )
    .await;
    browser
        .save_screenshot(std::path::Path::new(LIVE_SCREENSHOT))
        .await
        .expect("screenshot");
    assert!(shown.contains("Hello, and welcome"), "{shown}");
    assert!(shown.contains("hardest problem"), "{shown}");
    assert!(shown.contains("local mode"), "{shown}");

    // The browser received and played the interviewer's audio, over 127.0.0.1.
    let stats = live_stats(browser).await;
    eprintln!("browser stats: {stats}");
    let number = |key: &str| -> f64 {
        stats[key]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {stats}"))
    };
    assert!(number("packetsReceived") > 200.0, "{stats}");
    assert!(number("audioEnergy") > 0.01, "inbound audio energy {stats}");
    // Our answer says we play Opus at 16 kHz at most (`maxplaybackrate`): Chromium's encoder
    // stops at wideband, so no packet codes a band the engine would decode only to drop.
    let (wideband, wider) = engine::transport::inbound::packets_by_band();
    let (wideband, wider) = (wideband - wideband_before, wider - wider_before);
    eprintln!("candidate packets: {wideband} wideband or narrower, {wider} wider");
    assert!(
        wideband > 200,
        "the microphone's packets were counted: {wideband}"
    );
    assert_eq!(wider, 0, "no packet codes above 8 kHz ({wideband} did not)");
    // Chromium also offers its LAN candidates and may send checks from them to our 127.0.0.1:
    // the server's sockets drop those (never answering a non-loopback address).
    eprintln!(
        "loopback guard dropped {} datagrams so far",
        engine::transport::loopback_guard::dropped_datagrams()
    );
    for side in ["localAddress", "remoteAddress"] {
        let address = stats[side].as_str().unwrap_or_default();
        assert!(
            address.starts_with("127."),
            "{side} {address}: loopback only"
        );
    }

    // The fake STT heard the speech: energy above a floor, the WAV's timing.
    let fakes = app
        .state
        .local_vendors
        .as_ref()
        .expect("keyless local mode");
    let heard = fakes.deepgram.counters();
    assert!(
        heard.max_rms > 1000.0,
        "speech energy reached the STT: {heard:?}"
    );
    assert!(
        heard.audio_seconds >= wav_seconds - 1.5,
        "the whole WAV ({wav_seconds:.1} s) was streamed: {heard:?}"
    );

    end_and_show_result(browser).await;
    let rows = browser
        .eval("return document.querySelectorAll('#result-turns tbody tr').length;")
        .await
        .unwrap();
    assert!(
        rows.as_u64().unwrap_or(0) >= 1,
        "a per-turn latency row shows"
    );
    browser
        .save_screenshot(std::path::Path::new(RESULT_SCREENSHOT))
        .await
        .expect("screenshot");

    // Stored: both speakers, the candidate's segment spanning about the spoken sentence, and
    // a per-turn breakdown.
    let id = browser
        .eval("return document.body.dataset.interviewId;")
        .await
        .unwrap();
    let id = id.as_str().expect("interview id").to_owned();
    let token = api_token(&app, &call.email, PASSWORD).await;
    let detail: Value = app
        .get_as(&format!("/api/v1/interviews/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let transcript = detail["transcript"].as_array().expect("transcript");
    let candidate: Vec<&Value> = transcript
        .iter()
        .filter(|s| s["speaker"] == "candidate")
        .collect();
    assert!(!candidate.is_empty(), "{transcript:?}");
    let start = candidate
        .iter()
        .filter_map(|s| s["start_ms"].as_i64())
        .min()
        .unwrap();
    let end = candidate
        .iter()
        .filter_map(|s| s["end_ms"].as_i64())
        .max()
        .unwrap();
    let span = (end - start) as f64 / 1000.0;
    eprintln!("speech {speech_seconds:.2} s in the WAV; the STT's segment spans {span:.2} s");
    assert!(
        (span - speech_seconds).abs() <= (speech_seconds * 0.4).max(1.2),
        "the heard speech ({span:.2} s) lasts about as long as the WAV's ({speech_seconds:.2} s)"
    );
    let turns = detail["turns"].as_array().expect("turns");
    assert!(!turns.is_empty(), "a stored per-turn breakdown");
    eprintln!(
        "stored turn: {}; connect {:?}; test {:?}",
        turns[0],
        call.connect_time,
        call.started.elapsed()
    );
    assert!(detail["interview"]["end_reason"].is_string());
    call.browser.close().await.unwrap();
}

/// Barge-in from a real browser: the fake microphone starts talking while the greeting is
/// still playing; the greeting is stored and shown as interrupted, and the conversation goes on
/// with the next scripted question.
#[actix_web::test]
async fn browser_barge_in_talks_over_the_greeting() {
    let _slot = tests::browser::one_spoken_call_at_a_time().await;
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(wav) = spoken_wav(
        dir.path(),
        "Sorry to interrupt, but I would rather start with the billing migration I led last year",
        0.0,
        2.5,
    ) else {
        return;
    };
    let Some(call) = start_browser_interview(&app, Microphone::Scripted, true).await else {
        return;
    };
    let browser = &call.browser;
    // The candidate speaks once the greeting (about 7 s of audio) has been playing for a second,
    // however long the call took to connect on a loaded machine.
    browser
        .wait_until(
            "document.body.dataset.interviewState === 'greeting'",
            Duration::from_secs(30),
        )
        .await
        .expect("the greeting starts");
    tokio::time::sleep(Duration::from_secs(1)).await;
    browser
        .speak_into_microphone(&wav)
        .await
        .expect("the candidate speaks");
    let shown = wait_transcript(
        browser,
        "[...t.querySelectorAll('li[data-speaker=candidate]')].some((l) => l.textContent.includes('local mode')) \
         && t.querySelectorAll('li[data-speaker=interviewer]').length >= 2 \
         && document.body.dataset.interviewState === 'listening'",
        Duration::from_secs(50),
    )
    .await;
    // The interview goes on after the interruption: a follow-up question comes after the
    // candidate's words. (Which one depends on how many replies the fake interviewer has served:
    // a reply that the candidate's own resumed speech withdrew counts too.)
    let after_candidate = shown.split_once("You:").map_or("", |(_, rest)| rest);
    assert!(
        [
            "hardest problem",
            "How did you know",
            "what would you change"
        ]
        .iter()
        .any(|question| after_candidate.contains(question)),
        "a follow-up question follows the candidate's words: {shown}"
    );
    let energy = inbound_audio_energy(browser).await;
    assert!(energy > 0.0, "the interviewer's audio played: {energy}");

    end_and_show_result(browser).await;
    let id = browser
        .eval("return document.body.dataset.interviewId;")
        .await
        .unwrap();
    let id = id.as_str().expect("interview id").to_owned();
    let token = api_token(&app, &call.email, PASSWORD).await;
    let detail: Value = app
        .get_as(&format!("/api/v1/interviews/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let transcript = detail["transcript"].as_array().expect("transcript");
    let greeting = transcript
        .iter()
        .find(|s| s["speaker"] == "interviewer")
        .expect("the greeting is stored");
    assert_eq!(greeting["interrupted"], true, "{transcript:?}");
    let heard = greeting["text"].as_str().unwrap_or_default();
    let interrupted_shown = browser
        .eval("return document.querySelectorAll('#result-transcript li[data-speaker=interviewer][data-interrupted=true]').length;")
        .await
        .unwrap();
    assert!(
        interrupted_shown.as_u64().unwrap_or(0) >= 1,
        "the page marks the interrupted greeting"
    );
    eprintln!(
        "barge-in: heard greeting {heard:?}; connect {:?}; test {:?}",
        call.connect_time,
        call.started.elapsed()
    );
    call.browser.close().await.unwrap();
}

/// Keyless local mode end to end in a real browser, nothing simulated: the offline recognizer
/// hears the candidate's spoken answer (most of its content words reach the transcript), the
/// local interviewer's follow-up depends on what was said (an answer told only as "we" gets
/// "what did you personally do"), and its espeak-ng voice reaches the browser as audio. After
/// the end the answer is scored on the result screen, the skills screen charts the levels, and
/// a drill's "Practise this" starts an interview focused on its skill.
#[actix_web::test]
async fn browser_local_mode_recognizes_the_answer_and_follows_up_on_what_was_said() {
    let Some(speech_dir) = std::env::var_os("LOCAL_SPEECH_DIR") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI prepares the offline recognizer and sets LOCAL_SPEECH_DIR"
        );
        eprintln!("notice: skipping the local-mode browser interview: LOCAL_SPEECH_DIR is not set");
        return;
    };
    let _slot = tests::browser::one_spoken_call_at_a_time().await;
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.local_vendors = api::configuration::LocalVendorsMode::Local;
        settings.local_speech_dir = Some(speech_dir.into());
    })
    .await;
    let health: Value = app.get("/health").await.json().await.expect("json");
    assert_eq!(
        health["vendors"],
        serde_json::json!({"stt": "local", "llm": "local", "tts": "local"}),
        "{health}"
    );
    let dir = tempfile::tempdir().unwrap();
    let answer = "We moved the reports to a queue, and we split the work between the two teams. \
                  Then we wrote the new consumer, and we reviewed it together until our tests passed.";
    let Some(wav) = spoken_wav(dir.path(), answer, 0.3, 2.5) else {
        return;
    };
    let Some(call) = start_browser_interview(&app, Microphone::Scripted, false).await else {
        return;
    };
    let browser = &call.browser;
    // The candidate answers once the greeting and first question have been spoken.
    browser
        .wait_until(
            "document.body.dataset.interviewState === 'listening' \
             && document.querySelectorAll('#live-transcript li[data-speaker=interviewer]').length >= 1",
            Duration::from_secs(90),
        )
        .await
        .expect("the interviewer greets and asks, then listens");
    browser
        .speak_into_microphone(&wav)
        .await
        .expect("the candidate speaks");
    let shown = wait_transcript(
        browser,
        "t.textContent.includes('personally') \
         && [...t.querySelectorAll('li[data-speaker=candidate]')].length >= 1",
        Duration::from_secs(120),
    )
    .await;
    let heard: String = shown
        .split_once("You:")
        .map_or("", |(_, rest)| rest)
        .to_lowercase();
    assert!(
        !heard.contains("simulated"),
        "recognized, not simulated: {shown}"
    );
    // Stems: "reports" heard as "report" still counts.
    let content_words = ["report", "queue", "work", "team", "consumer", "test"];
    let recognized = content_words
        .iter()
        .filter(|word| heard.contains(*word))
        .count();
    eprintln!(
        "local mode heard {recognized}/{} content words: {shown}",
        content_words.len()
    );
    assert!(
        recognized >= 4,
        "most content words are recognized ({recognized}/6): {shown}"
    );
    assert!(
        shown.contains("You said we a lot"),
        "the follow-up asks what the candidate did personally: {shown}"
    );
    let energy = inbound_audio_energy(browser).await;
    assert!(
        energy > 0.01,
        "the espeak-ng voice reached the browser as audio: {energy}"
    );
    end_and_show_result(browser).await;
    // After the call, as a new user sees it: the interview just held is scored (local rules,
    // no key), its skills get a level and a trend chart, and a drill starts a focused interview.
    let scored = browser
        .wait_until(
            "(() => { const box = document.querySelector('#result-scores'); \
               const cards = document.querySelectorAll('#result-answers article.answer'); \
               return box.dataset.state === 'done' && cards.length > 0 && \
                 [...document.querySelectorAll('#result-answers .findings li')].map((f) => f.dataset.rule); })()",
            Duration::from_secs(120),
        )
        .await
        .expect("the held interview's answer is scored on the result screen");
    eprintln!("local-mode interview scored; findings: {scored}");
    browser
        .goto(&app.url("/#/skills"))
        .await
        .expect("skills screen");
    wait_view(browser, "skills").await;
    browser
        .wait_until(
            "document.querySelectorAll('#skills-list li svg.trend circle').length > 0 \
             && document.querySelectorAll('#drills-list li button.practise').length > 0",
            Duration::from_secs(30),
        )
        .await
        .expect("skill levels with trend charts and a drill plan");
    let skill = browser
        .eval("return document.querySelector('#drills-list li').dataset.skill;")
        .await
        .expect("a drill slot");
    browser
        .click("#drills-list li button.practise")
        .await
        .expect("practise this");
    wait_view(browser, "mic").await;
    let token = api_token(&app, &call.email, PASSWORD).await;
    let list: Value = app
        .get_as("/api/v1/interviews", &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        list["interviews"][0]["focus_skill"],
        skill.as_str().expect("a skill name"),
        "{list}"
    );
    assert_eq!(list["interviews"][0]["status"], "created", "{list}");
    call.browser.close().await.unwrap();
}

/// Feedback in the page: the result screen of a scored interview shows each answer's score and
/// findings with their quoted evidence highlighted in the transcript; the skills screen draws
/// each skill's trend as inline SVG; "Practise this" starts an interview focused on the skill.
#[actix_web::test]
async fn browser_shows_scores_with_highlighted_evidence_skill_charts_and_starts_a_drill() {
    use entities::interviews::InterviewKind;
    use entities::transcript_segments::Speaker;
    use tests::feedback::{STRONG_ANSWER, VAGUE_ANSWER, ended_interview_with_transcript, rescore};

    let app = spawn_app(Backend::Sqlite).await;
    let session = app.signed_in_user().await;
    let account = app.account_id(&session).await;
    let mut ids = Vec::new();
    for answer in [VAGUE_ANSWER, STRONG_ANSWER] {
        let id = ended_interview_with_transcript(
            &app,
            account,
            InterviewKind::Behavioral,
            &[
                (
                    Speaker::Interviewer,
                    "Tell me about a project you are proud of.",
                ),
                (Speaker::Candidate, answer),
            ],
        )
        .await;
        assert_eq!(rescore(&app, &session, id).await["state"], "done");
        ids.push(id);
    }
    let Some(browser) = open_page(&app).await else {
        return;
    };
    sign_in(&browser, &session.email, PASSWORD).await;

    browser
        .goto(&app.url(&format!("/#/result?id={}", ids[0])))
        .await
        .expect("result screen");
    let marks = browser
        .wait_until(
            "(() => { const box = document.querySelector('#result-scores'); \
               const marks = [...document.querySelectorAll('#result-transcript li[data-speaker=candidate] mark')]; \
               return box.dataset.state === 'done' && marks.length > 0 && marks.map((m) => m.textContent); })()",
            Duration::from_secs(30),
        )
        .await
        .expect("scores appear with evidence highlighted");
    let marks: Vec<String> = serde_json::from_value(marks).expect("mark texts");
    let said = text_of(
        &browser,
        "#result-transcript li[data-speaker=candidate] .words",
    )
    .await;
    for mark in &marks {
        assert!(
            said.contains(mark.as_str()),
            "{mark:?} is the candidate's words"
        );
    }
    assert!(marks.iter().any(|m| m.contains("went well,")), "{marks:?}");
    let findings = text_of(&browser, "#result-answers .findings").await;
    assert!(findings.contains("went well"), "{findings}");
    assert!(
        !text_of(&browser, "#result-answers .improved")
            .await
            .is_empty()
    );
    assert!(
        text_of(&browser, "#result-answers .delivery")
            .await
            .contains("words per minute")
    );

    browser.goto(&app.url("/#/skills")).await.expect("skills");
    wait_view(&browser, "skills").await;
    let chart = browser
        .wait_until(
            "(() => { const svg = document.querySelector('#skills-list li[data-skill=ownership_signal] svg.trend'); \
               return svg && { points: svg.querySelectorAll('circle').length, lines: svg.querySelectorAll('polyline').length }; })()",
            DEFAULT_TIMEOUT,
        )
        .await
        .expect("the ownership chart renders");
    let _ = browser
        .save_screenshot(std::path::Path::new(SKILLS_SCREENSHOT))
        .await;
    // The starting level and two updates.
    assert_eq!(chart["points"], 3, "{chart}");
    assert_eq!(chart["lines"], 1, "{chart}");
    let skill = browser
        .eval("return document.querySelector('#drills-list li').dataset.skill;")
        .await
        .expect("a drill slot");
    let skill = skill.as_str().expect("skill").to_owned();
    browser
        .click("#drills-list li button.practise")
        .await
        .expect("practise this");
    wait_view(&browser, "mic").await;
    let token = api_token(&app, &session.email, PASSWORD).await;
    let list: Value = app
        .get_as("/api/v1/interviews", &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        list["interviews"][0]["focus_skill"],
        skill.as_str(),
        "{list}"
    );
    assert_eq!(list["interviews"][0]["status"], "created");
    browser.close().await.expect("browser closes");
}

/// The usage screen lists the account's own usage per interview and provider, with who was
/// billed and the cost, and nobody else's rows.
#[actix_web::test]
async fn browser_usage_screen_lists_the_accounts_calls_with_who_was_billed() {
    use entities::usage_log;
    use sea_orm::ActiveModelTrait;
    use sea_orm::ActiveValue::Set;

    let app = spawn_app(Backend::Sqlite).await;
    let session = app.signed_in_user().await;
    let other = app.signed_in_user().await;
    let account = app.account_id(&session).await;
    let stranger = app.account_id(&other).await;
    let row =
        |account_id, provider: &str, key_source: &str, cost_micro_usd| usage_log::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            account_id: Set(Some(account_id)),
            interview_id: Set(None),
            provider: Set(provider.into()),
            model: Set("m".into()),
            operation: Set("op".into()),
            key_source: Set(key_source.into()),
            input_tokens: Set(1200),
            output_tokens: Set(80),
            cache_read_tokens: Set(0),
            cache_creation_tokens: Set(0),
            audio_seconds: Set(0.0),
            characters: Set(0),
            latency_ms: Set(400.0),
            cost_micro_usd: Set(cost_micro_usd),
            created_at: Set(chrono::Utc::now()),
        };
    for model in [
        row(account, "anthropic", "byok", 12_500),
        row(account, "deepgram", "platform", 7_700),
        row(stranger, "elevenlabs", "platform", 999_000),
    ] {
        model.insert(&app.db).await.expect("usage row");
    }
    let Some(browser) = open_page(&app).await else {
        return;
    };
    sign_in(&browser, &session.email, PASSWORD).await;
    browser
        .goto(&app.url("/#/usage"))
        .await
        .expect("usage screen");
    wait_view(&browser, "usage").await;
    let rows = browser
        .wait_until(
            "(() => { const rows = [...document.querySelectorAll('#usage-table tbody tr')]; \
               return rows.length > 0 && rows.map((r) => [r.dataset.provider, r.dataset.billedTo, r.lastElementChild.textContent]); })()",
            Duration::from_secs(30),
        )
        .await
        .expect("usage rows appear");
    let mut rows: Vec<(String, String, String)> = serde_json::from_value(rows).expect("rows");
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("anthropic".into(), "your_own_key".into(), "$0.0125".into()),
            ("deepgram".into(), "platform".into(), "$0.0077".into()),
        ],
        "the account's own rows only"
    );
    let summary = text_of(&browser, "#usage-summary").await;
    assert!(
        summary.contains("$0.0202 in all") && summary.contains("$0.0077 on InterviewCraft"),
        "{summary}"
    );
    browser.close().await.expect("browser closes");
}
