// HttpClient::upgrade of the libcurl client against a small server on a unix socket in a temp
// folder, which plays the engine's side of the protocol switch.

#include "jitbox/net/http.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace jitbox;

namespace {

// A unix socket server that accepts one connection and runs `serve` on it in a thread.
class OneShotServer {
public:
    using ServeFn = std::function<void(int connection, const std::string& request)>;

    OneShotServer(const std::filesystem::path& path, ServeFn serve) {
        m_listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(m_listener >= 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        REQUIRE(path.string().size() < sizeof address.sun_path);
        path.string().copy(address.sun_path, sizeof address.sun_path - 1);
        REQUIRE(::bind(m_listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(m_listener, 1) == 0);
        m_thread = std::thread([this, serve = std::move(serve)] {
            const int connection = ::accept(m_listener, nullptr, nullptr);
            if (connection < 0) {
                return;
            }
            m_request = read_request(connection);
            serve(connection, m_request);
            ::close(connection);
        });
    }

    ~OneShotServer() {
        ::shutdown(m_listener, SHUT_RDWR);
        if (m_thread.joinable()) {
            m_thread.join();
        }
        ::close(m_listener);
    }

    // The request as received: headers and a body of Content-Length bytes.
    const std::string& request() {
        if (m_thread.joinable()) {
            m_thread.join();
        }
        return m_request;
    }

private:
    static std::string read_request(int connection) {
        std::string text;
        char buffer[4096];
        while (text.find("\r\n\r\n") == std::string::npos) {
            const ssize_t count = ::read(connection, buffer, sizeof buffer);
            if (count <= 0) {
                return text;
            }
            text.append(buffer, static_cast<std::size_t>(count));
        }
        const auto length_at = text.find("Content-Length: ");
        const std::size_t length =
            length_at == std::string::npos ? 0 : std::stoul(text.substr(length_at + 16));
        while (text.size() < text.find("\r\n\r\n") + 4 + length) {
            const ssize_t count = ::read(connection, buffer, sizeof buffer);
            if (count <= 0) {
                break;
            }
            text.append(buffer, static_cast<std::size_t>(count));
        }
        return text;
    }

    int m_listener = -1;
    std::thread m_thread;
    std::string m_request;
};

void write_text(int connection, const std::string& text) {
    REQUIRE(::write(connection, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

// Reads from the stream until its end, waiting at most 5 s in all.
std::string read_to_end(RawStream& stream) {
    std::string received;
    char buffer[1024];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
        const auto count = stream.receive(std::span<char>(buffer));
        REQUIRE(count.ok());
        if (!*count) {
            pollfd entry{stream.socket(), POLLIN, 0};
            ::poll(&entry, 1, 100);
            continue;
        }
        if (**count == 0) {
            return received;
        }
        received.append(buffer, **count);
    }
    FAIL("the stream did not end within 5 s");
    return received;
}

struct Client {
    explicit Client(const std::filesystem::path& socket) {
        HttpEndpoint endpoint;
        endpoint.unix_socket = socket.string();
        endpoint.base_url = "http://localhost";
        http = make_curl_client(endpoint, std::chrono::seconds(2));
    }

    Result<UpgradeResponse> upgrade(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        HttpRequest request;
        request.method = "POST";
        request.target = "/v1.41/exec/abc/start";
        request.body = "{}";
        request.headers = {{"Content-Type", "application/json"}};
        request.timeout = timeout;
        return http->upgrade(request);
    }

    std::unique_ptr<HttpClient> http;
};

constexpr const char* k_switch_reply = "HTTP/1.1 101 UPGRADED\r\n"
                                       "Content-Type: application/vnd.docker.raw-stream\r\n"
                                       "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

} // namespace

TEST_SUITE("net upgrade") {

    TEST_CASE("upgrade hands over the stream both ways") {
        test::TempDir folder;
        OneShotServer server(folder.path() / "engine.sock", [](int connection, const std::string&) {
            write_text(connection, std::string(k_switch_reply) + "early ");
            std::string input;
            char buffer[256];
            ssize_t count = 0;
            while ((count = ::read(connection, buffer, sizeof buffer)) > 0) {
                input.append(buffer, static_cast<std::size_t>(count));
            }
            write_text(connection, "got " + input);
        });
        Client client(folder.path() / "engine.sock");

        Result<UpgradeResponse> reply = client.upgrade();

        REQUIRE(reply.ok());
        CHECK(reply->response.status == 101);
        CHECK(reply->response.headers["upgrade"] == "tcp");
        REQUIRE(reply->stream != nullptr);
        RawStream& stream = *reply->stream;
        const auto sent = stream.send("ping");
        REQUIRE(sent.ok());
        CHECK(*sent == std::optional<std::size_t>(4));
        REQUIRE(stream.close_write().ok());
        CHECK(read_to_end(stream) == "early got ping");

        const std::string& request = server.request();
        CHECK(request.starts_with("POST /v1.41/exec/abc/start HTTP/1.1\r\n"));
        CHECK(request.find("\r\nHost: localhost\r\n") != std::string::npos);
        CHECK(request.find("\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n") != std::string::npos);
        CHECK(request.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
        CHECK(request.ends_with("\r\nContent-Length: 2\r\n\r\n{}"));
    }

    TEST_CASE("upgrade returns an error reply with its body") {
        test::TempDir folder;
        OneShotServer server(folder.path() / "engine.sock", [](int connection, const std::string&) {
            const std::string body = R"({"message":"container c1 is not running"})";
            write_text(connection, "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                                   "Content-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n" +
                                       body.substr(0, 10));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            write_text(connection, body.substr(10));
        });
        Client client(folder.path() / "engine.sock");

        Result<UpgradeResponse> reply = client.upgrade();

        REQUIRE(reply.ok());
        CHECK(reply->stream == nullptr);
        CHECK(reply->response.status == 409);
        CHECK(reply->response.body == R"({"message":"container c1 is not running"})");
    }

    TEST_CASE("upgrade fails when the server closes before replying") {
        test::TempDir folder;
        OneShotServer server(folder.path() / "engine.sock", [](int, const std::string&) {});
        Client client(folder.path() / "engine.sock");

        Result<UpgradeResponse> reply = client.upgrade();

        REQUIRE_FALSE(reply.ok());
        CHECK(reply.error().code == ExitCode::provider);
        CHECK(reply.error().message.starts_with("cannot reach unix://"));
        CHECK(reply.error().message.find("closed the connection before it replied") !=
              std::string::npos);
    }

    TEST_CASE("upgrade times out on a silent server") {
        test::TempDir folder;
        OneShotServer server(folder.path() / "engine.sock", [](int, const std::string&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(600));
        });
        Client client(folder.path() / "engine.sock");

        const auto started = std::chrono::steady_clock::now();
        Result<UpgradeResponse> reply = client.upgrade(std::chrono::milliseconds(200));
        const auto waited = std::chrono::steady_clock::now() - started;

        REQUIRE_FALSE(reply.ok());
        CHECK(reply.error().message.find("timed out") != std::string::npos);
        CHECK(waited < std::chrono::milliseconds(550));
    }

    TEST_CASE("upgrade rejects a reply that is not HTTP") {
        test::TempDir folder;
        OneShotServer server(folder.path() / "engine.sock", [](int connection, const std::string&) {
            write_text(connection, "SSH-2.0-OpenSSH\r\n\r\n");
        });
        Client client(folder.path() / "engine.sock");

        Result<UpgradeResponse> reply = client.upgrade();

        REQUIRE_FALSE(reply.ok());
        CHECK(reply.error().message.find("does not start with an HTTP status line") !=
              std::string::npos);
    }

    TEST_CASE("upgrade reports a missing socket") {
        test::TempDir folder;
        Client client(folder.path() / "missing.sock");

        Result<UpgradeResponse> reply = client.upgrade();

        REQUIRE_FALSE(reply.ok());
        CHECK(reply.error().code == ExitCode::provider);
        CHECK(reply.error().message.find("No such file or directory") != std::string::npos);
    }
}
