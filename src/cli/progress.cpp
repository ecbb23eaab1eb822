#include "progress.hpp"

#include <array>
#include <cstdlib>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <utility>

namespace jitbox::cli {

namespace {

constexpr auto k_redraw_interval = std::chrono::milliseconds(100);
constexpr std::size_t k_bar_width = 20;
constexpr std::array<char, 4> k_spinner{'|', '/', '-', '\\'};

constexpr std::string_view k_green = "\x1b[32m";
constexpr std::string_view k_yellow = "\x1b[33m";
constexpr std::string_view k_reset = "\x1b[0m";
// The first moves the cursor to column 0, and the second erases to the end of the line.
constexpr std::string_view k_line_start = "\r";
constexpr std::string_view k_erase_to_end = "\x1b[K";

// Statuses that the engine sends once all of a layer's bytes are downloaded.
bool is_downloaded(std::string_view status) {
    return status == "Download complete" || status == "Verifying Checksum" ||
           status.starts_with("Extracting") || status == "Pull complete";
}

bool is_finished(std::string_view status) {
    return status == "Pull complete" || status == "Already exists";
}

} // namespace

StderrStyle detect_stderr_style() {
    StderrStyle style;
    style.terminal = ::isatty(STDERR_FILENO) == 1;
    const char* no_color = std::getenv("NO_COLOR");
    style.colour = style.terminal && (no_color == nullptr || no_color[0] == '\0');
    winsize size{};
    if (style.terminal && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
        style.width = size.ws_col;
    }
    return style;
}

std::string warning_prefix(const StderrStyle& style) {
    if (!style.colour) {
        return "jitbox: warning: ";
    }
    return fmt::format("jitbox: {}warning:{} ", k_yellow, k_reset);
}

std::string format_bytes(std::int64_t bytes) {
    constexpr std::array<std::string_view, 4> k_units{"kB", "MB", "GB", "TB"};
    if (bytes < 1000) {
        return fmt::format("{} B", bytes);
    }
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    for (value /= 1000; value >= 1000 && unit + 1 < k_units.size(); value /= 1000) {
        ++unit;
    }
    return fmt::format("{:.1f} {}", value, k_units[unit]);
}

ProgressDisplay::ProgressDisplay(StderrStyle style, WriteFn write,
                                 std::function<Clock::time_point()> now)
    : m_style(style), m_write(std::move(write)), m_now(std::move(now)) {}

ProgressDisplay::~ProgressDisplay() {
    clear();
}

void ProgressDisplay::report(const ProgressEvent& event) {
    // The first layer of a pull and the start of a wait change what the line shows, so they
    // are drawn at once. Later events only update numbers and wait for the next redraw.
    const bool throttled = (event.kind == ProgressEvent::Kind::layer && !m_layers.empty()) ||
                           (event.kind == ProgressEvent::Kind::waiting && event.text == m_waiting);
    switch (event.kind) {
    case ProgressEvent::Kind::step:
        if (event.text.empty()) {
            clear();
            return;
        }
        m_step = event.text;
        m_layers.clear();
        m_waiting.clear();
        break;
    case ProgressEvent::Kind::layer:
        update_layer(event);
        break;
    case ProgressEvent::Kind::waiting:
        if (event.text != m_waiting) {
            m_waiting = event.text;
            m_waiting_since = m_now();
        }
        break;
    }
    if (throttled && m_drawn && m_now() - m_last_draw < k_redraw_interval) {
        return;
    }
    draw();
}

void ProgressDisplay::update_layer(const ProgressEvent& event) {
    Layer& layer = m_layers[event.layer];
    if (event.text == "Downloading") {
        layer.size = std::max(layer.size, event.total);
        layer.downloaded = std::min(event.current, layer.size > 0 ? layer.size : event.current);
    } else if (is_downloaded(event.text)) {
        layer.downloaded = layer.size;
    }
    layer.done = layer.done || is_finished(event.text);
}

void ProgressDisplay::clear() {
    if (m_drawn) {
        m_write(fmt::format("{}{}", k_line_start, k_erase_to_end));
        m_drawn = false;
    }
}

std::string ProgressDisplay::line() const {
    return compose(false);
}

std::string ProgressDisplay::bar(bool coloured) const {
    std::int64_t size = 0;
    std::int64_t downloaded = 0;
    for (const auto& [id, layer] : m_layers) {
        size += layer.size;
        downloaded += layer.downloaded;
    }
    if (size == 0) {
        return {};
    }
    const auto filled = static_cast<std::size_t>(static_cast<double>(downloaded) /
                                                 static_cast<double>(size) * k_bar_width);
    const std::string done(std::min(filled, k_bar_width), '#');
    const std::string left(k_bar_width - done.size(), '.');
    if (coloured) {
        return fmt::format(" [{}{}{}{}] {} / {}", k_green, done, k_reset, left,
                           format_bytes(downloaded), format_bytes(size));
    }
    return fmt::format(" [{}{}] {} / {}", done, left, format_bytes(downloaded), format_bytes(size));
}

std::string ProgressDisplay::compose(bool coloured) const {
    if (!m_waiting.empty()) {
        const auto waited =
            std::chrono::duration_cast<std::chrono::seconds>(m_now() - m_waiting_since);
        return fmt::format("{} {} ({}s)",
                           k_spinner[static_cast<std::size_t>(m_spinner) % k_spinner.size()],
                           m_waiting, waited.count());
    }
    if (m_layers.empty()) {
        return m_step;
    }
    std::size_t finished = 0;
    for (const auto& [id, layer] : m_layers) {
        finished += layer.done ? 1 : 0;
    }
    return fmt::format("{}{}, {}/{} layers", m_step, bar(coloured), finished, m_layers.size());
}

void ProgressDisplay::draw() {
    ++m_spinner;
    std::string text = compose(false);
    // One column stays free, because writing the last column makes some terminals wrap.
    const auto columns = static_cast<std::size_t>(std::max(m_style.width - 1, 10));
    if (text.size() > columns) {
        text.resize(columns);
    } else if (m_style.colour) {
        text = compose(true); // colour only when nothing is cut, so no escape is cut in half
    }
    m_write(fmt::format("{}{}{}", k_line_start, text, k_erase_to_end));
    m_drawn = true;
    m_last_draw = m_now();
}

} // namespace jitbox::cli
