// The C++ binding's test program: every public function of fieldauth.hpp,
// bad inputs with their status codes, full token lifecycles against the
// providers' documented (golden) responses, snapshots, device and
// authorization-code flows, and move semantics. Built and run by
// bindings/cpp/tests/cpp.rs with -Wall -Wextra -Werror -pedantic.
//
// Optional: with FIELDAUTH_EMULATOR_URL=http://127.0.0.1:PORT in the
// environment it also gets Autotask tokens from a running
// fieldauth-emulator over a loopback socket (the Rust test starts one).
//
// Prints "N passed, N failed" and exits non-zero on any failure.

#include "fieldauth.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#define HAVE_SOCKETS 1
#endif

#if defined(__SANITIZE_ADDRESS__)
#define FA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FA_ASAN 1
#endif
#endif

using namespace fieldauth;

static int passed = 0;
static int failed = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (cond) {                                                              \
      ++passed;                                                              \
    } else {                                                                 \
      ++failed;                                                              \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                   \
    }                                                                        \
  } while (0)

#define CHECK_STR(actual, expected)                                           \
  do {                                                                        \
    std::string a_ = std::string(actual), e_ = std::string(expected);         \
    if (a_ == e_) {                                                           \
      ++passed;                                                               \
    } else {                                                                  \
      ++failed;                                                               \
      std::fprintf(stderr, "%s:%d: %s\n  is:     \"%s\"\n  wanted: \"%s\"\n", \
                   __FILE__, __LINE__, #actual, a_.c_str(), e_.c_str());      \
    }                                                                         \
  } while (0)

/// Runs `f`; checks that it throws fieldauth::Error with `code` and a
/// message that starts with "fieldauth error <code>: ". Returns the message.
template <class F>
static std::string expect_error(Status code, F &&f, const char *expr, int line) {
  try {
    f();
  } catch (const Error &e) {
    std::string prefix = "fieldauth error " + std::to_string(static_cast<unsigned>(code)) + ": ";
    bool ok = e.code() == code && std::string(e.what()).rfind(prefix, 0) == 0;
    if (ok) {
      ++passed;
    } else {
      ++failed;
      std::fprintf(stderr, "%s:%d: %s: wanted status %u, got %u: %s\n", __FILE__, line, expr,
                   static_cast<unsigned>(code), static_cast<unsigned>(e.code()), e.what());
    }
    return e.what();
  } catch (const std::exception &e) {
    ++failed;
    std::fprintf(stderr, "%s:%d: %s: wanted fieldauth::Error %u, got another exception: %s\n",
                 __FILE__, line, expr, static_cast<unsigned>(code), e.what());
    return "";
  }
  ++failed;
  std::fprintf(stderr, "%s:%d: %s: wanted fieldauth::Error %u, nothing thrown\n", __FILE__, line,
               expr, static_cast<unsigned>(code));
  return "";
}

#define EXPECT_ERROR(code, expr) expect_error(code, [&] { (void)(expr); }, #expr, __LINE__)

static bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}
static bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
static bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

static constexpr std::uint64_t S = 1000;        // one second in ms
static constexpr std::uint64_t T0 = 10000000;   // virtual boot time (ms)
static constexpr std::uint64_t UNIX0 = 1700000000000ull;

static std::string json_response(int status, std::string_view body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

// Golden responses from the providers' documents (shared/seeds).
static const char AUTOTASK_TOKEN[] =
    "{\n  \"access_token\": \"eyJhbGciOiJIUzI1NiIsInR5cCI6...\",\n"
    "  \"token_type\": \"Bearer\",\n  \"expires_in\": 3600\n}";
static const char FIELD_NATION_TOKEN[] =
    "{\"access_token\": "
    "\"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
    "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\", \"token_type\": \"Bearer\", "
    "\"expires_in\": 3600}";
static const char FIELD_NATION_TOKEN_VALUE[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ij"
    "oxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
static const char FIELD_NATION_INVALID_CLIENT[] =
    "{\n  \"error\": \"invalid_client\",\n  \"error_description\": \"Client authentication failed\"\n}";

static Config autotask_config() {
  Config c;
  c.base_url = "https://webservices.autotask.net";
  c.client_id = "demo-client";
  c.client_secret = "demo-secret";
  return c;
}

static Config field_nation_config() {
  Config c = autotask_config();
  c.base_url = "https://api.fieldnation.com";
  return c;
}

/// Sends the due token request and answers it with `response`, the head in
/// two pieces and the body in 7-byte chunks, as a device would.
static Event exchange(Session &s, std::uint64_t now, const std::string &response,
                      std::string *request = nullptr) {
  SecretBytes req = s.write_token_request(now);
  if (request) *request = std::string(req.view());
  HeadProgress h1 = s.feed_token_head(now, std::string_view(response).substr(0, 10));
  CHECK(!h1.complete && h1.consumed == 10);
  HeadProgress h2 = s.feed_token_head(now, std::string_view(response).substr(10));
  CHECK(h2.complete);
  std::string_view body = std::string_view(response).substr(10 + h2.consumed);
  std::optional<Event> ev;
  for (std::size_t at = 0; at < body.size(); at += 7) {
    BodyProgress p = s.feed_token_body(now, body.substr(at, 7));
    CHECK(p.consumed == body.substr(at, 7).size());
    if (p.event) ev = p.event;
  }
  if (body.empty()) ev = s.feed_token_body(now, {}).event;
  CHECK(ev.has_value());
  return ev ? *ev : Event{};
}

// ------------------------------------------------------------------ tests

static void free_functions() {
  CHECK(!version().empty() && contains(version(), "."));
  CHECK(preset_count() == 7);
  CHECK_STR(preset_name(Preset::Custom), "custom");
  CHECK_STR(preset_name(Preset::FentuApiKey), "Fentu FSM (API key)");
  CHECK_STR(preset_name(Preset::FentuOauth), "Fentu FSM (OAuth)");
  CHECK_STR(preset_name(Preset::FieldNation), "Field Nation");
  CHECK_STR(preset_name(Preset::Autotask), "Autotask");
  CHECK_STR(preset_name(Preset::PatchworksApiKey), "Patchworks (API key)");
  CHECK_STR(preset_name(Preset::PatchworksLogin), "Patchworks (login)");
  for (std::uint32_t id = 0; id < preset_count(); ++id) {
    Preset p = static_cast<Preset>(id);
    CHECK(preset_by_name(preset_name(p)) == p);
  }
  CHECK(preset_by_name("autotask") == Preset::Autotask);
  CHECK(preset_by_name("field-nation") == Preset::FieldNation);
  std::string msg = EXPECT_ERROR(Status::UnknownEnum, preset_by_name("salesforce"));
  CHECK(contains(msg, "Autotask") && contains(msg, "Field Nation"));
  EXPECT_ERROR(Status::UnknownEnum, preset_name(static_cast<Preset>(42)));
  EXPECT_ERROR(Status::InvalidUtf8, preset_by_name("\xff"));
  CHECK_STR(status_message(Status::WrongState), "call not valid in the current state");
  CHECK_STR(status_message(Status::Ok), "success");
  CHECK_STR(status_message(static_cast<Status>(12345)), "unknown fieldauth status code");
  Error e(Status::SnapshotCorrupt);
  CHECK(e.code() == Status::SnapshotCorrupt);
  CHECK(starts_with(e.what(), "fieldauth error 702: snapshot image is corrupt"));
}

static void autotask_lifecycle() {
  Session s(Preset::Autotask, autotask_config(), 42);
  CHECK(s.valid() && static_cast<bool>(s));
  Action a = s.poll(T0);
  CHECK(a.kind == ActionKind::SendTokenRequest && a.request == RequestKind::Fetch);
  CHECK_STR(s.token_request_url(), "https://webservices.autotask.net/ATServicesRest/oauth/token");

  // Nothing is in flight yet: a head, a body or an EOF is out of order.
  EXPECT_ERROR(Status::WrongState, s.feed_token_head(T0, "HTTP/1.1 200 OK\r\n"));
  EXPECT_ERROR(Status::WrongState, s.feed_token_body(T0, "{}"));
  EXPECT_ERROR(Status::WrongState, s.feed_token_eof(T0));

  std::string req;
  std::string response = json_response(200, AUTOTASK_TOKEN);
  SecretBytes r = s.write_token_request(T0);
  req = std::string(r.view());
  CHECK(starts_with(req, "POST /ATServicesRest/oauth/token HTTP/1.1\r\n"));
  CHECK(contains(req, "Host: webservices.autotask.net\r\n"));
  CHECK(ends_with(req, "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret"));
  CHECK(s.poll(T0).kind == ActionKind::AwaitResponse);
  // One request in flight at a time; the body comes after the head.
  EXPECT_ERROR(Status::WrongState, s.write_token_request(T0));
  EXPECT_ERROR(Status::WrongState, s.feed_token_body(T0, "{}"));

  Event ev = s.feed_token_response(T0, response);
  CHECK(ev.kind == EventKind::TokenIssued);
  CHECK(ev.request == RequestKind::Fetch && ev.lifetime_s == 3600 && !ev.refreshable);

  a = s.poll(T0 + S);
  CHECK(a.kind == ActionKind::Ready);
  CHECK(a.at_ms >= T0 + 3510 * S && a.at_ms <= T0 + 3540 * S);
  Info info = s.info();
  CHECK(info.usable && info.expires_at_ms == T0 + 3600 * S && info.refresh_at_ms == a.at_ms);
  CHECK(!info.refreshable && info.failed_attempts == 0 && info.failure == Failure::None);
  CHECK(s.granted_scope().empty() && s.failure_description().empty());

  Authorization auth = s.authorize(T0 + S, "/ATServicesRest/V1.0/Companies");
  CHECK(auth.send() && auth.form == CredentialForm::Header);
  CHECK_STR(auth.header_name, "Authorization");
  CHECK_STR(auth.value.view(), "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6...");
  // Header credentials need no target.
  CHECK(s.authorize(T0 + 2 * S).send());

  CHECK(s.report_api_status(T0 + 2 * S, 200).kind == Verdict::Ok);
  CHECK(s.report_api_response(T0 + 2 * S, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .kind == Verdict::Forbidden);
  // Rate limited by the server: API requests wait.
  ApiVerdict v = s.report_api_response(
      T0 + 3 * S, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n");
  CHECK(v.kind == Verdict::RateLimited && v.until_ms == T0 + 33 * S);
  Authorization wait = s.authorize(T0 + 4 * S);
  CHECK(wait.kind == AuthorizationKind::Wait && wait.until_ms == T0 + 33 * S);
  CHECK(wait.value.empty() && wait.form == CredentialForm::None);
  CHECK(s.info().api_blocked_until_ms == T0 + 33 * S);

  // 401: the token is dropped; a new one is fetched and the request retried.
  v = s.report_api_status(T0 + 40 * S, 401);
  CHECK(v.kind == Verdict::RetryWithNewToken);
  CHECK(s.authorize(T0 + 40 * S).kind == AuthorizationKind::NoCredential);
  // Autotask's token endpoint budget paces the next fetch.
  a = s.poll(T0 + 40 * S);
  std::uint64_t t = a.kind == ActionKind::Wait ? a.at_ms : T0 + 40 * S;
  CHECK(s.poll(t).kind == ActionKind::SendTokenRequest);
  ev = exchange(s, t, json_response(200, "{\"access_token\":\"tok-2\",\"token_type\":\"Bearer\",\"expires_in\":3600}"));
  CHECK(ev.kind == EventKind::TokenIssued);
  CHECK_STR(s.authorize(t).value.view(), "Bearer tok-2");
  // A second 401 right after the retry is surfaced, not retried.
  CHECK(s.report_api_status(t + S, 401).kind == Verdict::Unauthorized);
}

static void field_nation_lifecycle() {
  Session s("Field Nation", field_nation_config(), 5);
  std::string req;
  Event ev = exchange(s, T0, json_response(200, FIELD_NATION_TOKEN), &req);
  CHECK(starts_with(req, "POST /authentication/api/oauth/token HTTP/1.1\r\n"));
  CHECK(contains(req, "Content-Type: application/json\r\n"));
  CHECK(ends_with(req, "{\"grant_type\":\"client_credentials\",\"client_id\":\"demo-client\","
                       "\"client_secret\":\"demo-secret\",\"scope\":\"api\"}"));
  CHECK(ev.kind == EventKind::TokenIssued && ev.lifetime_s == 3600);

  // The token goes into the query.
  Authorization a = s.authorize(T0 + S, "/api/rest/v2/workorders");
  CHECK(a.send() && a.form == CredentialForm::Query && a.header_name.empty());
  CHECK_STR(a.value.view(), std::string("/api/rest/v2/workorders?access_token=") + FIELD_NATION_TOKEN_VALUE);
  a = s.authorize(T0 + S, "/api/rest/v2/workorders?page=2");
  CHECK(starts_with(a.value.view(), "/api/rest/v2/workorders?page=2&access_token=eyJ"));
  // Bad targets are refused before anything is counted.
  EXPECT_ERROR(Status::InputEmpty, s.authorize(T0 + S, ""));
  EXPECT_ERROR(Status::InputInvalidCharacter, s.authorize(T0 + S, "/a#fragment"));
  EXPECT_ERROR(Status::InputControlCharacter, s.authorize(T0 + S, "/a\r\nX: y"));
  EXPECT_ERROR(Status::InvalidUtf8, s.authorize(T0 + S, "/\xc3"));

  // Field Nation's 400 "Expired token" means the token is gone.
  ApiVerdict v = s.report_api_response(
      T0 + 2 * S, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n",
      "{\"error\":\"invalid_request\",\"error_description\":\"Expired token\"}");
  CHECK(v.kind == Verdict::RetryWithNewToken);
  CHECK(s.poll(T0 + 2 * S).kind == ActionKind::SendTokenRequest);

  // invalid_client is permanent, with the server's description.
  Session bad(Preset::FieldNation, field_nation_config(), 6);
  ev = exchange(bad, T0, json_response(401, FIELD_NATION_INVALID_CLIENT));
  CHECK(ev.kind == EventKind::Failed && ev.failure == Failure::InvalidClient);
  CHECK_STR(bad.failure_description(), "Client authentication failed");
  Action act = bad.poll(T0 + S);
  CHECK(act.kind == ActionKind::Failed && act.failure == Failure::InvalidClient);
  CHECK(bad.info().failure == Failure::InvalidClient && !bad.info().usable);
  bad.restart();
  CHECK(bad.poll(T0 + S).kind == ActionKind::SendTokenRequest);
}

static void bad_configuration() {
  Config c = autotask_config();
  c.client_secret = "";
  std::string msg = EXPECT_ERROR(Status::InputMissing, Session(Preset::Autotask, c, 1));
  CHECK(contains(msg, "field: client_secret"));
  c = autotask_config();
  c.client_id = "";
  msg = EXPECT_ERROR(Status::InputMissing, Session(Preset::Autotask, c, 1));
  CHECK(contains(msg, "field: client_id"));
  c = autotask_config();
  c.base_url = "";
  EXPECT_ERROR(Status::InputInvalidUrl, Session(Preset::Autotask, c, 1));

  c = autotask_config();
  c.client_id = "demo\r\nX-Injected: 1";
  msg = EXPECT_ERROR(Status::InputControlCharacter, Session(Preset::Autotask, c, 1));
  CHECK(contains(msg, "field: client_id"));

  // Secrets never appear in messages.
  c = autotask_config();
  c.client_secret = "hunter2\n";
  msg = EXPECT_ERROR(Status::InputControlCharacter, Session(Preset::Autotask, c, 1));
  CHECK(!contains(msg, "hunter2"));

  c = autotask_config();
  c.base_url = "ftp://webservices.autotask.net";
  EXPECT_ERROR(Status::InputInvalidUrl, Session(Preset::Autotask, c, 1));
  c.base_url = "http://webservices.autotask.net";
  EXPECT_ERROR(Status::InputInsecureScheme, Session(Preset::Autotask, c, 1));
  c.allow_insecure = true;
  CHECK(Session(Preset::Autotask, c, 1).valid());

  c = autotask_config();
  c.client_id = "\xff\xfe";
  msg = EXPECT_ERROR(Status::InvalidUtf8, Session(Preset::Autotask, c, 1));
  CHECK(contains(msg, "field: client_id"));

  // Oversized input: a secret larger than the session's arena.
  std::string huge(5000, 's');
  c = autotask_config();
  c.client_secret = huge;
  EXPECT_ERROR(Status::CapacityExceeded, Session(Preset::Autotask, c, 1));

  // API-key presets need the key; enumerations must be known.
  Config k;
  k.base_url = "https://api.fentu.io";
  msg = EXPECT_ERROR(Status::InputMissing, Session(Preset::FentuApiKey, k, 1));
  CHECK(contains(msg, "field: api_key"));
  EXPECT_ERROR(Status::UnknownEnum, Session(static_cast<Preset>(99), autotask_config(), 1));
  EXPECT_ERROR(Status::UnknownEnum,
               Session(Profile{Preset::Autotask, static_cast<Mode>(77), ClientAuth::Preset},
                       autotask_config(), 1));
  EXPECT_ERROR(Status::UnknownEnum,
               Session(Profile{Preset::Autotask, Mode::Preset, static_cast<ClientAuth>(9)},
                       autotask_config(), 1));
  EXPECT_ERROR(Status::UnknownEnum, Session("nope", autotask_config(), 1));
}

static void bad_responses() {
  // Malformed JSON: the exchange fails, a retry is scheduled.
  Session s(Preset::Autotask, autotask_config(), 7);
  s.write_token_request(T0);
  std::string bad = json_response(200, "{\"access_token\": nope}");
  EXPECT_ERROR(Status::JsonSyntax, s.feed_token_response(T0, bad));
  Info info = s.info();
  CHECK(info.failed_attempts == 1 && !info.usable);
  Action a = s.poll(T0);
  CHECK(a.kind == ActionKind::Wait || a.kind == ActionKind::SendTokenRequest);

  // An oversized token does not fit the session.
  Session s2(Preset::Autotask, autotask_config(), 8);
  s2.write_token_request(T0);
  std::string big = "{\"access_token\":\"" + std::string(4000, 'A') +
                    "\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
  EXPECT_ERROR(Status::CapacityExceeded, s2.feed_token_response(T0, json_response(200, big)));

  // A missing member, a wrong token type.
  Session s3(Preset::Autotask, autotask_config(), 9);
  s3.write_token_request(T0);
  EXPECT_ERROR(Status::ResponseMissingMember,
               s3.feed_token_response(T0, json_response(200, "{\"token_type\":\"Bearer\"}")));
  Session s4(Preset::Autotask, autotask_config(), 10);
  s4.write_token_request(T0);
  EXPECT_ERROR(Status::ResponseUnsupportedTokenType,
               s4.feed_token_response(
                   T0, json_response(200, "{\"access_token\":\"x\",\"token_type\":\"MAC\"}")));

  // A malformed head counts as a failed exchange too.
  Session s5(Preset::Autotask, autotask_config(), 11);
  s5.write_token_request(T0);
  EXPECT_ERROR(Status::HttpStatusLine, s5.feed_token_head(T0, "HTTX/1.1 200 OK\r\n\r\n"));
  CHECK(s5.info().failed_attempts == 1);
  EXPECT_ERROR(Status::WrongState, s5.feed_token_body(T0, "{}"));
  // Too many header lines (oversized head).
  Session s6(Preset::Autotask, autotask_config(), 12);
  s6.write_token_request(T0);
  std::string head = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 150; ++i) head += "X-Filler: " + std::to_string(i) + "\r\n";
  EXPECT_ERROR(Status::HttpTooManyHeaders, s6.feed_token_head(T0, head));
  // The connection closing early.
  Session s7(Preset::Autotask, autotask_config(), 13);
  s7.write_token_request(T0);
  EXPECT_ERROR(Status::Transport, s7.feed_token_eof(T0));
  Session s8(Preset::Autotask, autotask_config(), 14);
  s8.write_token_request(T0);
  EXPECT_ERROR(Status::Transport, s8.feed_token_response(T0, "HTTP/1.1 200 OK\r\nContent-"));
  CHECK(s8.info().failed_attempts == 1);

  // A transport error schedules a retry.
  Session s9(Preset::Autotask, autotask_config(), 15);
  s9.write_token_request(T0);
  Event ev = s9.report_transport_error(T0 + S);
  CHECK(ev.kind == EventKind::Retrying && ev.http_status == 0 && ev.at_ms >= T0 + S);
  CHECK(s9.info().failed_attempts == 1);

  // A 503 from the token endpoint is transient.
  Session s10(Preset::Autotask, autotask_config(), 16);
  ev = exchange(s10, T0, "HTTP/1.1 503 Unavailable\r\nRetry-After: 20\r\nContent-Length: 0\r\n\r\n");
  CHECK(ev.kind == EventKind::Retrying && ev.http_status == 503 && ev.at_ms >= T0 + 20 * S);

  // API response heads: incomplete or malformed.
  Session api(Preset::Autotask, autotask_config(), 17);
  exchange(api, T0, json_response(200, AUTOTASK_TOKEN));
  EXPECT_ERROR(Status::WrongState, api.report_api_response(T0, "HTTP/1.1 200 OK\r\n"));
  EXPECT_ERROR(Status::HttpStatusLine, api.report_api_response(T0, "garbage\r\n\r\n"));
  EXPECT_ERROR(Status::HttpStatusLine, api.report_api_status(T0, 42));
}

static void snapshots() {
  Session s(Preset::Autotask, autotask_config(), 21);
  s.set_wall_clock(T0, UNIX0);
  exchange(s, T0, json_response(200, AUTOTASK_TOKEN));
  SecretBytes img = s.snapshot(T0 + S, UNIX0 + S);
  CHECK(img.size() == s.snapshot_len() && img.size() > 0);

  // A fresh process (another monotonic clock) restores it.
  Session r(Preset::Autotask, autotask_config(), 22);
  r.restore(500, UNIX0 + 2 * S, img.view());
  CHECK(r.info().usable);
  Authorization a = r.authorize(600);
  CHECK(a.send());
  CHECK_STR(a.value.view(), "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6...");

  // Corrupt, truncated and foreign images are refused; the session is unchanged.
  std::string corrupt(img.view());
  corrupt[corrupt.size() / 2] = static_cast<char>(corrupt[corrupt.size() / 2] ^ 0x5a);
  Session fresh(Preset::Autotask, autotask_config(), 23);
  EXPECT_ERROR(Status::SnapshotCorrupt, fresh.restore(500, UNIX0 + 2 * S, corrupt));
  EXPECT_ERROR(Status::SnapshotLength, fresh.restore(500, UNIX0 + 2 * S, img.view().substr(1)));
  EXPECT_ERROR(Status::SnapshotLength, fresh.restore(500, UNIX0 + 2 * S, ""));
  CHECK(!fresh.info().usable);
  CHECK(fresh.poll(500).kind == ActionKind::SendTokenRequest);
  Config other = autotask_config();
  other.client_id = "someone-else";
  Session foreign(Preset::Autotask, other, 24);
  EXPECT_ERROR(Status::SnapshotForeign, foreign.restore(500, UNIX0 + 2 * S, img.view()));
  // Two hours later nothing in it is valid.
  EXPECT_ERROR(Status::SnapshotExpired, fresh.restore(500, UNIX0 + 7200 * S, img.view()));
  // No snapshot while a request is in flight.
  fresh.write_token_request(600);
  EXPECT_ERROR(Status::WrongState, fresh.snapshot(600, UNIX0));

  // SecretBytes wipes itself.
  SecretBytes moved = std::move(img);
  CHECK(img.empty() && moved.size() == s.snapshot_len());
  moved.wipe();
  CHECK(moved.empty());
}

static void device_flow() {
  Config c;
  c.base_url = "https://auth.example.com";
  c.client_id = "handheld";
  Session s(Profile{Preset::Custom, Mode::DeviceCode, ClientAuth::None}, c, 4);
  EXPECT_ERROR(Status::WrongState, s.device_display());
  Action a = s.poll(T0);
  CHECK(a.kind == ActionKind::SendTokenRequest && a.request == RequestKind::DeviceAuthorization);
  std::string req;
  Event ev = exchange(
      s, T0,
      json_response(200,
                    "{\"device_code\":\"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS\",\"user_code\":"
                    "\"WDJB-MJHT\",\"verification_uri\":\"https://example.com/device\","
                    "\"verification_uri_complete\":\"https://example.com/"
                    "device?user_code=WDJB-MJHT\",\"expires_in\":1800,\"interval\":5}"),
      &req);
  CHECK(starts_with(req, "POST /oauth/device_authorization HTTP/1.1"));
  CHECK(ev.kind == EventKind::UserCode);
  DeviceDisplay d = s.device_display();
  CHECK_STR(d.user_code, "WDJB-MJHT");
  CHECK_STR(d.verification_uri, "https://example.com/device");
  CHECK_STR(d.verification_uri_complete, "https://example.com/device?user_code=WDJB-MJHT");
  CHECK(d.expires_at_ms == T0 + 1800 * S);
  a = s.poll(T0 + S);
  CHECK(a.kind == ActionKind::Wait && a.at_ms == T0 + 5 * S);
  ev = exchange(s, T0 + 5 * S, json_response(400, "{\"error\":\"authorization_pending\"}"), &req);
  CHECK(ev.kind == EventKind::AuthorizationPending);
  CHECK(s.poll(T0 + 5 * S).request == RequestKind::None);
  ev = exchange(s, T0 + 10 * S, json_response(400, "{\"error\":\"slow_down\"}"));
  CHECK(ev.kind == EventKind::SlowDown);
  ev = exchange(s, T0 + 20 * S,
                json_response(200, "{\"access_token\":\"dev-token\",\"token_type\":\"Bearer\","
                                   "\"expires_in\":3600,\"refresh_token\":\"dev-rt\"}"));
  CHECK(ev.kind == EventKind::TokenIssued && ev.request == RequestKind::DevicePoll && ev.refreshable);
  EXPECT_ERROR(Status::WrongState, s.device_display());
  CHECK_STR(s.authorize(T0 + 21 * S).value.view(), "Bearer dev-token");
}

static void authorization_code_flow() {
  Config c;
  c.base_url = "https://api.fentu.io";
  c.client_id = "fentu-client";
  c.client_secret = "fentu-secret";
  c.redirect_uri = "https://app.example.com/callback";
  Session s(Preset::FentuOauth, c, 9);
  CHECK(s.poll(T0).kind == ActionKind::NeedAuthorizationCode);
  EXPECT_ERROR(Status::WrongState, s.set_authorization_code("code", "state"));
  std::string verifier(32, 'v'), state(16, 's');
  EXPECT_ERROR(Status::InputTooShort, s.authorization_url(std::string(10, 'v'), state));
  EXPECT_ERROR(Status::InputTooShort, s.authorization_url(verifier, "tiny"));
  std::string url = s.authorization_url(verifier, state);
  CHECK(starts_with(url, "https://api.fentu.io/oauth/authorize?"));
  CHECK(contains(url, "client_id=fentu-client") && contains(url, "code_challenge_method=S256"));
  std::size_t at = url.find("state=");
  CHECK(at != std::string::npos);
  std::string st = url.substr(at + 6, url.find('&', at) - (at + 6));
  CHECK(!st.empty());
  EXPECT_ERROR(Status::InputInvalidCharacter, s.set_authorization_code("the-code", "forged-state"));
  s.set_authorization_code("the-code", st);
  Action a = s.poll(T0);
  CHECK(a.kind == ActionKind::SendTokenRequest && a.request == RequestKind::Fetch);
  std::string req;
  Event ev = exchange(s, T0,
                      json_response(200, "{\"access_token\":\"fa-1\",\"token_type\":\"Bearer\","
                                         "\"expires_in\":3600,\"refresh_token\":\"fr-1\","
                                         "\"scope\":\"read:work-orders\"}"),
                      &req);
  CHECK(contains(req, "grant_type=authorization_code&code=the-code"));
  CHECK(contains(req, "code_verifier="));
  CHECK(ev.kind == EventKind::TokenIssued && ev.refreshable);
  CHECK_STR(s.granted_scope(), "read:work-orders");
  CHECK(s.info().refreshable);

  // Revocation (Fentu: POST with the bearer token).
  s.revoke();
  a = s.poll(T0 + S);
  CHECK(a.kind == ActionKind::SendTokenRequest && a.request == RequestKind::Revoke);
  ev = exchange(s, T0 + S, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &req);
  CHECK(starts_with(req, "POST /oauth/revoke HTTP/1.1"));
  CHECK(contains(req, "Authorization: Bearer fa-1"));
  CHECK(ev.kind == EventKind::Revoked);
  a = s.poll(T0 + 2 * S);
  CHECK(a.kind == ActionKind::Failed && a.failure == Failure::Revoked);
  CHECK(s.authorize(T0 + 2 * S).kind == AuthorizationKind::NoCredential);
}

static void api_keys_and_login() {
  Config c;
  c.base_url = "https://app.wearepatchworks.com";
  c.api_key = "pw-key";
  Session s(Preset::PatchworksApiKey, c, 0);
  Action a = s.poll(T0);
  CHECK(a.kind == ActionKind::Ready && a.at_ms == never);
  CHECK(s.info().expires_at_ms == never);
  Authorization auth = s.authorize(T0);
  CHECK(auth.send() && auth.header_name == "Authorization");
  CHECK_STR(auth.value.view(), "pw-key");
  CHECK(s.report_api_status(T0, 401).kind == Verdict::InvalidKey);
  a = s.poll(T0);
  CHECK(a.kind == ActionKind::Failed && a.failure == Failure::InvalidKey);
  CHECK(s.authorize(T0).kind == AuthorizationKind::NoCredential);
  // Token requests are not a thing in API-key mode.
  EXPECT_ERROR(Status::WrongState, s.write_token_request(T0));

  Config f;
  f.base_url = "https://api.fentu.io";
  f.api_key = "YOUR_API_KEY";
  Session fentu(Preset::FentuApiKey, f, 0);
  CHECK_STR(fentu.authorize(T0).value.view(), "Bearer YOUR_API_KEY");
  EXPECT_ERROR(Status::WrongState, fentu.authorization_url(std::string(32, 'v'), std::string(16, 's')));

  Config l;
  l.base_url = "https://app.wearepatchworks.com";
  l.username = "me@patchworks.com";
  l.password = "a1b2c3d4e5f6";
  Session login(Preset::PatchworksLogin, l, 1);
  std::string req;
  Event ev = exchange(login, T0,
                      json_response(200, "{\"message\":\"Login successful\",\"token\":\"pw-tok\","
                                         "\"expires_in\":86400}"),
                      &req);
  CHECK(starts_with(req, "POST /fabric/api/login HTTP/1.1"));
  CHECK(ends_with(req, "{\"username\":\"me@patchworks.com\",\"password\":\"a1b2c3d4e5f6\"}"));
  CHECK(ev.kind == EventKind::TokenIssued && ev.lifetime_s == 86400);
  CHECK_STR(login.authorize(T0).value.view(), "Bearer pw-tok");
}

static void lifecycle_controls() {
  // reseed / set_wall_clock / clear / restart.
  Session a(Preset::Autotask, autotask_config(), 1);
  Session b(Preset::Autotask, autotask_config(), 1);
  b.reseed(0x9e3779b97f4a7c15ull);
  a.set_wall_clock(T0, UNIX0);
  exchange(a, T0, json_response(200, AUTOTASK_TOKEN));
  exchange(b, T0, json_response(200, AUTOTASK_TOKEN));
  // Same seed, different reseed: the jitter streams differ (refresh time is
  // drawn from up to 30 s of jitter, so equal times would be a 1-in-30000 fluke
  // of the fixed seeds used here, not a flaky outcome).
  CHECK(a.info().refresh_at_ms != b.info().refresh_at_ms);

  a.clear();
  Info info = a.info();
  CHECK(!info.usable && info.failure == Failure::Revoked);
  CHECK(a.authorize(T0).kind == AuthorizationKind::NoCredential);
  CHECK(a.poll(T0).kind == ActionKind::Failed);
  a.clear();  // twice is fine
}

static void move_semantics() {
  static_assert(!std::is_copy_constructible<Session>::value, "Session is move-only");
  static_assert(!std::is_copy_assignable<Session>::value, "Session is move-only");
  static_assert(std::is_nothrow_move_constructible<Session>::value, "noexcept move");
  static_assert(std::is_nothrow_move_assignable<Session>::value, "noexcept move");
  static_assert(!std::is_copy_constructible<SecretBytes>::value, "SecretBytes is move-only");
  static_assert(std::is_nothrow_move_constructible<SecretBytes>::value, "noexcept move");
  static_assert(std::is_base_of<std::runtime_error, Error>::value, "Error is a runtime_error");

  Session a(Preset::Autotask, autotask_config(), 3);
  exchange(a, T0, json_response(200, AUTOTASK_TOKEN));
  Session b(std::move(a));
  CHECK(!a.valid() && b.valid());
  CHECK(b.authorize(T0).send());
  std::string msg = EXPECT_ERROR(Status::NotInitialized, a.poll(T0));
  CHECK(contains(msg, "moved from"));
  EXPECT_ERROR(Status::NotInitialized, a.info());
  EXPECT_ERROR(Status::NotInitialized, a.snapshot_len());
  EXPECT_ERROR(Status::NotInitialized, a.write_token_request(T0));
  a.clear();  // harmless on a moved-from session

  a = std::move(b);
  CHECK(a.valid() && !b.valid());
  // (T0 + S: Autotask's API budget spaces requests ~100 ms apart.)
  CHECK_STR(a.authorize(T0 + S).value.view(), "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6...");
  // Assigning over a live session wipes the old one first.
  Session c(Preset::FieldNation, field_nation_config(), 4);
  c = std::move(a);
  CHECK(c.info().usable && !a.valid());
  // Self-move leaves it intact.
  Session &alias = c;
  c = std::move(alias);
  CHECK(c.valid() && c.info().usable);
}

#ifdef HAVE_SOCKETS
/// A connected loopback socket, closed on destruction.
struct Socket {
  int fd = -1;
  explicit Socket(std::uint16_t port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
      close(fd);
      fd = -1;
    }
  }
  ~Socket() {
    if (fd >= 0) close(fd);
  }
  Socket(const Socket &) = delete;
  Socket &operator=(const Socket &) = delete;
  bool send_all(std::string_view out) const {
    while (!out.empty()) {
      ssize_t n = send(fd, out.data(), out.size(), 0);
      if (n <= 0) return false;
      out.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
};

/// One token exchange with the emulator: sends the request, feeds the
/// response as it arrives in 512-byte reads.
static Event token_over_socket(Session &s, std::uint64_t now, std::uint16_t port) {
  SecretBytes req = s.write_token_request(now);
  Socket sock(port);
  if (sock.fd < 0 || !sock.send_all(req.view())) return s.report_transport_error(now);
  bool in_head = true;
  char buf[512];
  while (true) {
    ssize_t n = recv(sock.fd, buf, sizeof buf, 0);
    if (n <= 0) return s.feed_token_eof(now);
    std::string_view chunk(buf, static_cast<std::size_t>(n));
    if (in_head) {
      HeadProgress h = s.feed_token_head(now, chunk);
      if (!h.complete) continue;
      in_head = false;
      chunk.remove_prefix(h.consumed);
    }
    BodyProgress p = s.feed_token_body(now, chunk);
    if (p.event) return *p.event;
  }
}

/// GET `target` with the session's credential; returns the response head
/// and reports it to the session.
static ApiVerdict api_over_socket(Session &s, std::uint64_t now, std::uint16_t port,
                                  const std::string &host, const std::string &target,
                                  std::string *head_out) {
  Authorization a = s.authorize(now, target);
  CHECK(a.send() && a.form == CredentialForm::Header);
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + a.header_name + ": " +
                    std::string(a.value.view()) + "\r\nConnection: close\r\n\r\n";
  Socket sock(port);
  CHECK(sock.fd >= 0 && sock.send_all(req));
  // Wipe our copy of the credential.
  for (char &c : req) *static_cast<volatile char *>(&c) = 0;
  std::string head;
  char buf[512];
  while (head.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(sock.fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    head.append(buf, static_cast<std::size_t>(n));
  }
  *head_out = head;
  return s.report_api_response(now, head);
}

/// Against a running fieldauth-emulator (FIELDAUTH_EMULATOR_URL, its root
/// URL): an Autotask token over a real socket, and an API call with it.
static void emulator() {
  const char *url = std::getenv("FIELDAUTH_EMULATOR_URL");
  if (!url) {
    std::printf("emulator: skipped (FIELDAUTH_EMULATOR_URL is not set)\n");
    return;
  }
  std::string root = url;  // http://127.0.0.1:PORT
  std::string host = root.substr(root.find("//") + 2);
  std::uint16_t port = static_cast<std::uint16_t>(std::atoi(host.c_str() + host.rfind(':') + 1));
  std::string base = root + "/autotask";
  Config c;
  c.base_url = base;
  c.client_id = "demo-client";
  c.client_secret = "demo-secret";
  Session s(Preset::Autotask, c, 77);
  CHECK(s.poll(0).kind == ActionKind::SendTokenRequest);
  Event ev = token_over_socket(s, 0, port);
  CHECK(ev.kind == EventKind::TokenIssued && ev.request == RequestKind::Fetch);
  unsigned lifetime = ev.lifetime_s;
  CHECK(s.info().usable);
  std::string head;
  ApiVerdict v = api_over_socket(s, 1000, port, host, "/autotask/ATServicesRest/V1.0/Companies", &head);
  CHECK(starts_with(head, "HTTP/1.1 200"));
  CHECK(v.kind == Verdict::Ok);
  // Wrong client secret: the emulator answers as Autotask does (400), and
  // the session fails permanently.
  Config wrong = c;
  wrong.client_secret = "not-the-secret";
  Session w(Preset::Autotask, wrong, 78);
  ev = token_over_socket(w, 0, port);
  CHECK(ev.kind == EventKind::Failed);
  CHECK(w.poll(0).kind == ActionKind::Failed);
  std::printf("emulator: Autotask token of %u s and API %.12s over loopback port %u; "
              "wrong secret -> failure %u\n",
              lifetime, head.c_str(),
              static_cast<unsigned>(port), static_cast<unsigned>(w.info().failure));
}
#endif

int main() {
#ifdef FA_ASAN
  std::printf("instrumented: AddressSanitizer\n");
#endif
  struct {
    const char *name;
    void (*run)();
  } tests[] = {
      {"free_functions", free_functions},
      {"autotask_lifecycle", autotask_lifecycle},
      {"field_nation_lifecycle", field_nation_lifecycle},
      {"bad_configuration", bad_configuration},
      {"bad_responses", bad_responses},
      {"snapshots", snapshots},
      {"device_flow", device_flow},
      {"authorization_code_flow", authorization_code_flow},
      {"api_keys_and_login", api_keys_and_login},
      {"lifecycle_controls", lifecycle_controls},
      {"move_semantics", move_semantics},
#ifdef HAVE_SOCKETS
      {"emulator", emulator},
#endif
  };
  for (auto &t : tests) {
    int before = failed;
    try {
      t.run();
    } catch (const std::exception &e) {
      ++failed;
      std::fprintf(stderr, "%s: unexpected exception: %s\n", t.name, e.what());
    }
    std::printf("%-26s %s\n", t.name, failed == before ? "ok" : "FAILED");
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
