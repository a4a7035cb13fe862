//! The developer center, driven black-box over HTTP as a browser would (cookies, forms, CSRF
//! tokens) against a real server: sign-in, lockout, TOTP, sessions, CSRF, roles and the
//! cross-participant matrix.

mod browser;
mod chromium;
mod console;
mod console_access;
mod console_notifications;
mod console_payers;
mod console_settlement;
mod explorer;
mod go_live;
mod grants;
mod keys;
mod logs;
mod payments;
mod refunds;
mod registrations;
mod reports;
mod settings;
mod sign_in;
mod team;
