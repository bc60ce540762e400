//! The sealed columns outside the account row, each under its owner's key: the sender's for a
//! message, the list owner's for a contact's nickname, the account's for a device and the
//! avatar file. A value's column is part of what it is sealed for.

pub const MESSAGE_BODY: &str = "messages.body";
pub const CONTACT_NICKNAME: &str = "contacts.nickname";
pub const DEVICE_NAME: &str = "devices.name";
pub const DEVICE_PUSH_TOKEN: &str = "devices.push_token";
/// The avatar file's contents (the `avatars` file store).
pub const AVATAR: &str = "avatars";

/// Every column the service seals, as `table.column` (the data map must say `sealed` for
/// exactly these).
pub const SEALED: &[&str] = &[
    "accounts.vsee_id",
    "accounts.email",
    "accounts.first_name",
    "accounts.last_name",
    "accounts.offline_notification_email",
    "accounts.avatar_file",
    MESSAGE_BODY,
    CONTACT_NICKNAME,
    DEVICE_NAME,
    DEVICE_PUSH_TOKEN,
    "notifications.recipient",
    "deletion_requests.notify_email",
    "tickets.sender",
    "tickets.subject",
    "tickets.body",
    "ticket_replies.sender",
    "ticket_replies.subject",
    "ticket_replies.body",
    "ticket_notes.body",
    "quarantined_mail.raw",
];

/// The blind indexes (keyed pseudonyms of the identifiers log-in and lookups search by).
pub const BLIND: &[&str] = &[
    "accounts.vsee_id_index",
    "accounts.email_index",
    "tickets.sender_index",
];
