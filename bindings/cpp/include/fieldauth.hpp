// fieldauth.hpp: the C++17 API of fieldauth (OAuth 2.0 / API-key client
// sessions for field-service APIs: Fentu FSM, Field Nation, Autotask,
// Patchworks). SPDX-License-Identifier: MIT OR Apache-2.0
//
// Sans-IO: you own the clock, the randomness and the sockets. Call
// Session::poll(now_ms) and do what the Action says:
//
//   SendTokenRequest  write_token_request(now) -> bytes: send them; feed the
//                     response with feed_token_response(), or piece by piece
//                     with feed_token_head() / feed_token_body() /
//                     feed_token_eof(); report I/O failures with
//                     report_transport_error().
//   Ready             for each API request: authorize(now, target), send it
//                     with the credential, and report_api_response().
//   Wait              poll again at action.at_ms.
//   NeedAuthorizationCode  authorization_url(), then set_authorization_code().
//   Failed            a permanent problem (action.failure): fix it, restart().
//
// Conventions
//   Inputs      std::string_view: text must be UTF-8 (Status::InvalidUtf8);
//               byte inputs (responses, snapshot images, randomness) are any
//               bytes viewed through a string_view.
//   Errors      every failure throws fieldauth::Error, whose code() is the C
//               ABI's status (include/fieldauth.h: same numbers, same
//               sentences) and whose what() says what to do. Messages never
//               contain secrets or input bytes. Calls that cannot fail are
//               noexcept.
//   Time        now_ms: a monotonic clock in milliseconds of your choosing;
//               unix_ms: wall-clock Unix time in milliseconds.
//   Memory      a Session owns one heap allocation (a rust::Box, ~3.7 KB)
//               and is move-only; its destructor wipes every secret. Byte
//               results that may hold secrets (SecretBytes) wipe themselves
//               too. The C ABI, for targets without a heap, never allocates.
//   Threads     one Session is used by one thread at a time; distinct
//               sessions are independent.
//
// Build: link libfieldauth_cpp.a (cargo build -p fieldauth-cpp); add
// bindings/cpp/include and <target-dir>/cxxbridge to the include path.
// See bindings/cpp/README.md.

#ifndef FIELDAUTH_HPP
#define FIELDAUTH_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "rust/cxx.h"
#include "fieldauth-cpp/src/lib.rs.h"

namespace fieldauth {

// ------------------------------------------------------------------ enums
// Their values are the C ABI's FIELDAUTH_* constants (checked when the
// library is compiled).

/// Status codes (FIELDAUTH_OK, FIELDAUTH_ERR_*): Status::WrongState, ...
using Status = bridge::Status;
/// Provider presets (FIELDAUTH_PRESET_*).
using Preset = bridge::Preset;
/// Authentication modes; Mode::Preset keeps the preset's.
using Mode = bridge::Mode;
/// Client authentication; ClientAuth::Preset keeps the preset's.
using ClientAuth = bridge::ClientAuth;
/// What poll() asks for.
using ActionKind = bridge::ActionKind;
/// Which token request.
using RequestKind = bridge::RequestKind;
/// Permanent failures.
using Failure = bridge::Failure;
/// What a token response did.
using EventKind = bridge::EventKind;
/// The answer of authorize().
using AuthorizationKind = bridge::AuthorizationKind;
/// How a credential is applied.
using CredentialForm = bridge::CredentialForm;
/// What an API response means.
using Verdict = bridge::Verdict;

// ------------------------------------------------------------------ plain results

/// What to do next: kind, at_ms (Ready: poll again by then; Wait: at then),
/// request (SendTokenRequest), failure (Failed).
using Action = bridge::Action;
/// What a token response did: kind, at_ms (Retrying), request, lifetime_s
/// and refreshable (TokenIssued), http_status (Retrying), failure (Failed).
using Event = bridge::Event;
/// What an API response means: kind, until_ms (RateLimited).
using ApiVerdict = bridge::ApiVerdict;
/// The session's state for display and logs (no secrets): usable,
/// expires_at_ms, refresh_at_ms, refreshable, failed_attempts,
/// api_blocked_until_ms, token_blocked_until_ms, failure, last_http_status,
/// last_content_json.
using Info = bridge::Info;

/// "Never" as a time (an API key's expiry).
inline constexpr std::uint64_t never = UINT64_MAX;

// ------------------------------------------------------------------ errors

/// The C ABI's English sentence for a status code (any value).
inline std::string_view status_message(Status status) noexcept {
  rust::Str s = bridge::status_message(static_cast<std::uint32_t>(status));
  return std::string_view(s.data(), s.size());
}

/// Every failure of this API. code() is the C ABI status; what() reads
/// "fieldauth error <code>: <what went wrong and what to do>".
class Error : public std::runtime_error {
 public:
  /// An error with a code and a complete message.
  Error(Status code, const std::string &what)
      : std::runtime_error(what), code_(code) {}

  /// An error with the standard sentence of `code`.
  explicit Error(Status code)
      : Error(code, "fieldauth error " +
                        std::to_string(static_cast<std::uint32_t>(code)) +
                        ": " + std::string(status_message(code))) {}

  /// The status code (never Status::Ok).
  Status code() const noexcept { return code_; }

 private:
  Status code_;
};

namespace detail {

/// The Error a rust::Error stands for: its message starts with
/// "fieldauth error <code>: " (see bindings/cpp/src/lib.rs).
inline Error translate(const rust::Error &e) {
  std::string_view what(e.what());
  constexpr std::string_view prefix = "fieldauth error ";
  std::uint32_t code = 0;
  bool digits = false;
  if (what.substr(0, prefix.size()) == prefix) {
    for (std::size_t i = prefix.size(); i < what.size(); ++i) {
      char c = what[i];
      if (c < '0' || c > '9' || code > 100000) break;
      code = code * 10 + static_cast<std::uint32_t>(c - '0');
      digits = true;
    }
  }
  Status status = digits && code != 0 ? static_cast<Status>(code) : Status::Unknown;
  return Error(status, std::string(what));
}

/// Calls into the bridge, turning rust::Error into fieldauth::Error.
template <class F>
auto call(F &&f) -> decltype(f()) {
  try {
    return f();
  } catch (const rust::Error &e) {
    throw translate(e);
  }
}

/// A byte view of a string_view for the bridge.
inline rust::Slice<const std::uint8_t> bytes(std::string_view s) noexcept {
  return rust::Slice<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t *>(s.data()), s.size());
}

inline std::string to_std(const rust::String &s) {
  return std::string(s.data(), s.size());
}

}  // namespace detail

// ------------------------------------------------------------------ secrets

/// Owned bytes that may hold a secret (a token request with the client
/// secret, a credential, a snapshot image). Move-only; wiped (with writes
/// the compiler cannot drop) when destroyed or assigned over. Copy out only
/// what you must, and only for as long as you must.
class SecretBytes {
 public:
  /// Empty.
  SecretBytes() noexcept = default;
  /// Takes ownership of bytes from the bridge.
  explicit SecretBytes(rust::Vec<std::uint8_t> &&v) noexcept : v_(std::move(v)) {}
  SecretBytes(SecretBytes &&o) noexcept : v_(std::move(o.v_)) {}
  SecretBytes &operator=(SecretBytes &&o) noexcept {
    if (this != &o) {
      wipe();
      v_ = std::move(o.v_);
    }
    return *this;
  }
  SecretBytes(const SecretBytes &) = delete;
  SecretBytes &operator=(const SecretBytes &) = delete;
  ~SecretBytes() { wipe(); }

  /// The bytes, valid while this object lives and is not moved from.
  std::string_view view() const noexcept {
    return std::string_view(reinterpret_cast<const char *>(v_.data()), v_.size());
  }
  /// Number of bytes.
  std::size_t size() const noexcept { return v_.size(); }
  /// No bytes.
  bool empty() const noexcept { return v_.empty(); }
  /// Overwrites the bytes with zeros and empties the buffer.
  void wipe() noexcept {
    volatile std::uint8_t *p = v_.data();
    for (std::size_t i = 0; i < v_.size(); ++i) p[i] = 0;
    v_.clear();
  }

 private:
  rust::Vec<std::uint8_t> v_;
};

// ------------------------------------------------------------------ inputs and results

/// Where the provider is and the credentials. Only viewed during the
/// Session constructor (the session copies what it needs): wipe your copies
/// afterwards. Empty means "not configured".
struct Config {
  std::string_view base_url;       ///< e.g. "https://webservices.autotask.net"
  std::string_view client_id;      ///< OAuth client_id
  std::string_view client_secret;  ///< OAuth client_secret
  std::string_view username;       ///< password grant / login
  std::string_view password;       ///< password grant / login
  std::string_view api_key;        ///< API-key mode
  std::string_view scope;          ///< empty: the preset's default
  std::string_view redirect_uri;   ///< authorization-code mode
  bool allow_insecure = false;     ///< plain http to a non-loopback host (test rigs only)
  /// The longest wait (s) a server answer may impose (Retry-After, rate-limit
  /// resets); longer ones are cut to it. 0: the default, one hour.
  std::uint32_t max_wait_s = 0;
};

/// A preset, optionally with another mode and client authentication (e.g.
/// the device flow or a public client on Preset::Custom).
struct Profile {
  Preset preset = Preset::Custom;              ///< the starting point
  Mode mode = Mode::Preset;                    ///< Mode::Preset: the preset's
  ClientAuth client_auth = ClientAuth::Preset; ///< ClientAuth::Preset: the preset's
};

/// Progress of feed_token_head().
struct HeadProgress {
  bool complete = false;      ///< the head is complete (the session has it)
  std::size_t consumed = 0;   ///< bytes that belonged to the head; the rest is body
  std::uint16_t http_status = 0;  ///< the response status, once complete
};

/// Progress of feed_token_body().
struct BodyProgress {
  std::size_t consumed = 0;    ///< bytes that belonged to the body
  std::optional<Event> event;  ///< what the session made of the response, once complete
};

/// The answer of authorize().
struct Authorization {
  AuthorizationKind kind = AuthorizationKind::NoCredential;
  std::uint64_t until_ms = 0;  ///< Wait: when a request may go out
  CredentialForm form = CredentialForm::None;
  std::string header_name;     ///< Header form: e.g. "Authorization"
  /// Header form: the header value ("Bearer <token>", "<key>", ...); Query
  /// form: the request target with the credential appended. Secret.
  SecretBytes value;

  /// Send: the request may go out with the credential.
  bool send() const noexcept { return kind == AuthorizationKind::Send; }
};

/// Device flow: what to show the user (after EventKind::UserCode).
struct DeviceDisplay {
  std::string user_code;
  std::string verification_uri;
  std::string verification_uri_complete;  ///< empty if the server sent none
  std::uint64_t expires_at_ms = 0;
};

// ------------------------------------------------------------------ free functions

/// Number of presets (ids 0 .. preset_count() - 1).
inline std::uint32_t preset_count() noexcept { return bridge::preset_count(); }

/// A preset's display name ("Autotask", "Field Nation", ...). Throws
/// Status::UnknownEnum for a value that is not a preset.
inline std::string_view preset_name(Preset preset) {
  rust::Str s = detail::call([&] { return bridge::preset_display_name(preset); });
  return std::string_view(s.data(), s.size());
}

/// The preset with this display name, ignoring case, spaces and
/// punctuation ("field-nation" finds Preset::FieldNation). Throws
/// Status::UnknownEnum (the message lists the names).
inline Preset preset_by_name(std::string_view name) {
  return detail::call([&] { return bridge::preset_by_name(detail::bytes(name)); });
}

/// The library version ("0.1.0").
inline std::string_view version() noexcept {
  rust::Str s = bridge::version();
  return std::string_view(s.data(), s.size());
}

// ------------------------------------------------------------------ session

/// A client session: the token state machine for one provider account.
/// Move-only RAII: the destructor wipes the tokens and secrets. A
/// moved-from session throws Status::NotInitialized from every method
/// except valid(), clear() and assignment.
class Session {
 public:
  /// A session for `profile` with `config`, seeding the retry and refresh
  /// jitter from `seed` (random 64 bits; devices should differ). Throws
  /// Status::InputEmpty / InputControlCharacter / InputInvalidUrl /
  /// InputInsecureScheme / InputMissing ... for unusable configuration,
  /// CapacityExceeded when the strings do not fit, InvalidUtf8.
  Session(const Profile &profile, const Config &config, std::uint64_t seed)
      : inner_(detail::call([&] {
          return bridge::new_session(
              profile.preset, profile.mode, profile.client_auth,
              detail::bytes(config.base_url), detail::bytes(config.client_id),
              detail::bytes(config.client_secret), detail::bytes(config.username),
              detail::bytes(config.password), detail::bytes(config.api_key),
              detail::bytes(config.scope), detail::bytes(config.redirect_uri),
              config.allow_insecure, config.max_wait_s, seed);
        })) {}

  /// A session for a preset as it is.
  Session(Preset preset, const Config &config, std::uint64_t seed)
      : Session(Profile{preset, Mode::Preset, ClientAuth::Preset}, config, seed) {}

  /// A session for the preset named `preset_name` (see preset_by_name()).
  Session(std::string_view preset_name, const Config &config, std::uint64_t seed)
      : Session(preset_by_name(preset_name), config, seed) {}

  Session(Session &&o) noexcept : inner_(std::move(o.inner_)) { o.inner_.reset(); }
  Session &operator=(Session &&o) noexcept {
    if (this != &o) {
      clear();
      inner_ = std::move(o.inner_);
      o.inner_.reset();
    }
    return *this;
  }
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;
  /// Wipes every secret (then the Rust side wipes its storage again as it
  /// frees it).
  ~Session() { clear(); }

  /// False for a moved-from session.
  bool valid() const noexcept { return inner_.has_value(); }
  explicit operator bool() const noexcept { return valid(); }

  /// What to do next at `now_ms`. Call it whenever time passes or a
  /// response completes.
  Action poll(std::uint64_t now_ms) { return get().poll(now_ms); }

  /// Writes the token request poll() asked for, as complete HTTP/1.1 bytes,
  /// and marks it in flight. Throws WrongState if none is due (poll first)
  /// or one is in flight. Holds the client secret: SecretBytes.
  SecretBytes write_token_request(std::uint64_t now_ms) {
    return SecretBytes(detail::call([&] { return get().write_token_request(now_ms); }));
  }

  /// The URL the current or next token request goes to.
  std::string token_request_url() const {
    return detail::to_std(detail::call([&] { return cget().token_request_url(); }));
  }

  /// Feeds bytes of the token response, starting at its status line, until
  /// the head is complete. Bytes after the head (consumed < input size) are
  /// the start of the body: pass them to feed_token_body(). Throws
  /// WrongState if no token request is in flight; Http* for a malformed
  /// head (the exchange then counts as failed and a retry is scheduled).
  HeadProgress feed_token_head(std::uint64_t now_ms, std::string_view bytes) {
    auto p = detail::call([&] { return get().feed_token_head(now_ms, detail::bytes(bytes)); });
    return HeadProgress{p.complete, p.consumed, p.http_status};
  }

  /// Feeds a piece of the token response body; once the body is complete,
  /// `event` says what the session made of it. Throws WrongState before
  /// the head; HttpChunk / Json* / Response* / CapacityExceeded for a bad
  /// body (the exchange counts as failed; a valid token stays valid).
  BodyProgress feed_token_body(std::uint64_t now_ms, std::string_view chunk) {
    auto p = detail::call([&] { return get().feed_token_body(now_ms, detail::bytes(chunk)); });
    BodyProgress out;
    out.consumed = p.consumed;
    if (p.event.kind != EventKind::None) out.event = p.event;
    return out;
  }

  /// The connection closed: completes a close-delimited body; anything else
  /// in flight is a failed exchange (throws Transport; a retry is
  /// scheduled). Throws WrongState if nothing is in flight.
  Event feed_token_eof(std::uint64_t now_ms) {
    return detail::call([&] { return get().feed_token_eof(now_ms); });
  }

  /// Feeds a whole token response (head and body) that is already in
  /// memory: the head, the body, and end-of-stream if the body is
  /// close-delimited. Returns what the session made of it.
  Event feed_token_response(std::uint64_t now_ms, std::string_view response) {
    HeadProgress h = feed_token_head(now_ms, response);
    if (!h.complete) {
      report_transport_error(now_ms);
      throw Error(Status::Transport,
                  "fieldauth error 800: the token response ended inside its head "
                  "(a retry is scheduled)");
    }
    BodyProgress b = feed_token_body(now_ms, response.substr(h.consumed));
    if (b.event) return *b.event;
    return feed_token_eof(now_ms);
  }

  /// The token request failed at the transport (connect, TLS, write, read,
  /// your own timeout): a retry is scheduled (EventKind::Retrying).
  Event report_transport_error(std::uint64_t now_ms) {
    return get().report_transport_error(now_ms);
  }

  /// Permission and credential for one API request at `now_ms`, counted
  /// against the client-side budget when granted. `target` is the request
  /// target ("/path?query" or an absolute URL); only query credentials use
  /// it (Field Nation). Throws Input* for a bad target (nothing counted).
  Authorization authorize(std::uint64_t now_ms, std::string_view target = {}) {
    auto a = detail::call([&] { return get().authorize(now_ms, detail::bytes(target)); });
    Authorization out;
    out.kind = a.kind;
    out.until_ms = a.until_ms;
    out.form = a.form;
    out.header_name = detail::to_std(a.header_name);
    out.value = SecretBytes(std::move(a.value));
    return out;
  }

  /// Reports the response to an API request: its raw head (from the status
  /// line up to and including the empty line; bytes after it are ignored)
  /// and optionally the first body bytes (to recognise an "expired token"
  /// phrase). Throws Http* for a malformed head, WrongState for an
  /// incomplete one.
  ApiVerdict report_api_response(std::uint64_t now_ms, std::string_view head,
                                 std::string_view body_prefix = {}) {
    return detail::call([&] {
      return get().report_api_response(now_ms, detail::bytes(head), detail::bytes(body_prefix));
    });
  }

  /// Reports an API response by its status code alone (no rate-limit or
  /// WWW-Authenticate headers to learn from). Throws HttpStatusLine for a
  /// status outside 100..999.
  ApiVerdict report_api_status(std::uint64_t now_ms, int http_status,
                               std::string_view body_prefix = {}) {
    std::string head = "HTTP/1.1 " + std::to_string(http_status) + " -\r\n\r\n";
    return report_api_response(now_ms, head, body_prefix);
  }

  /// Size of this session's snapshot image.
  std::size_t snapshot_len() const { return cget().snapshot_len(); }

  /// The session's state as an image to persist across restarts (it holds
  /// the tokens: store it like a password). Throws WrongState while a token
  /// request is in flight.
  SecretBytes snapshot(std::uint64_t now_ms, std::uint64_t unix_ms) const {
    return SecretBytes(detail::call([&] { return cget().snapshot(now_ms, unix_ms); }));
  }

  /// Restores an image from snapshot() of a session with the same
  /// configuration. Throws SnapshotLength / SnapshotCorrupt /
  /// SnapshotVersion / SnapshotForeign / SnapshotExpired (the session is
  /// left as it was), WrongState while a request is in flight.
  void restore(std::uint64_t now_ms, std::uint64_t unix_ms, std::string_view image) {
    detail::call([&] { get().restore(now_ms, unix_ms, detail::bytes(image)); });
  }

  /// Device flow: what to show the user. Throws WrongState if no device
  /// code is active.
  DeviceDisplay device_display() const {
    auto d = detail::call([&] { return cget().device_display(); });
    return DeviceDisplay{detail::to_std(d.user_code), detail::to_std(d.verification_uri),
                         detail::to_std(d.verification_uri_complete), d.expires_at_ms};
  }

  /// Authorization-code mode: the URL to open in a browser, with a state
  /// from `state_random` (16-48 random bytes) and a PKCE verifier from
  /// `verifier_random` (32-96 random bytes). Throws WrongState outside that
  /// mode, InputTooShort / InputTooLong for the randomness.
  std::string authorization_url(std::string_view verifier_random, std::string_view state_random) {
    return detail::to_std(detail::call([&] {
      return get().authorization_url(detail::bytes(verifier_random), detail::bytes(state_random));
    }));
  }

  /// Authorization-code mode: the code and state the redirect brought.
  /// Throws WrongState without a pending authorization URL,
  /// InputInvalidCharacter for a state mismatch or a bad code.
  void set_authorization_code(std::string_view code, std::string_view state) {
    detail::call([&] { get().set_authorization_code(detail::bytes(code), detail::bytes(state)); });
  }

  /// Records the wall clock: `unix_ms` at monotonic `now_ms`.
  void set_wall_clock(std::uint64_t now_ms, std::uint64_t unix_ms) {
    get().set_wall_clock(now_ms, unix_ms);
  }

  /// Mixes new randomness into the jitter generator.
  void reseed(std::uint64_t seed) { get().reseed(seed); }

  /// Asks the session to revoke its tokens (the next token request, of
  /// kind Revoke); afterwards it reports Failure::Revoked until restart().
  void revoke() { get().revoke(); }

  /// Leaves a permanent failure and resets the retry counter.
  void restart() { get().restart(); }

  /// Wipes every secret and token now; the session then reports
  /// Failure::Revoked. No-op on a moved-from session.
  void clear() noexcept {
    if (inner_) (*inner_)->clear();
  }

  /// State for display and logs (no secrets).
  Info info() const { return cget().info(); }

  /// The server's error_description for the last token error ("" if none).
  std::string failure_description() const {
    return detail::to_std(cget().failure_description());
  }

  /// The scope granted with the active token ("" if the server said none).
  std::string granted_scope() const { return detail::to_std(cget().granted_scope()); }

 private:
  [[noreturn]] static void moved_from() {
    throw Error(Status::NotInitialized,
                "fieldauth error 3: this session was moved from: use the session it was "
                "moved to, or assign a new one");
  }
  bridge::Session &get() {
    if (!inner_) moved_from();
    return **inner_;
  }
  const bridge::Session &cget() const {
    if (!inner_) moved_from();
    return **inner_;
  }

  std::optional<rust::Box<bridge::Session>> inner_;
};

}  // namespace fieldauth

#endif  // FIELDAUTH_HPP
