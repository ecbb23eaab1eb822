#pragma once

// What jitbox draws on standard error besides plain lines: the progress line, redrawn in place
// on a terminal, and colour. Both appear only when standard error is a terminal, and colour
// never when NO_COLOR is set to a non-empty value (https://no-color.org).

#include "jitbox/providers/provider.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace jitbox::cli {

/// The output capabilities of standard error.
struct StderrStyle {
    bool terminal = false; // standard error is a terminal
    bool colour = false;   // a terminal, and NO_COLOR is unset or empty
    int width = 80;        // the terminal's columns
};

/// Reads the style of this process's standard error.
StderrStyle detect_stderr_style();

/// "jitbox: warning: " in yellow when `style.colour`, else plain.
std::string warning_prefix(const StderrStyle& style);

/// Draws ProgressEvents as one line that is redrawn in place: the current step, a bar of the
/// bytes an image pull has received across its layers, or a spinner with the seconds waited.
/// Updates of the same pull or wait redraw at most ten times a second. The destructor clears the
/// line.
class ProgressDisplay {
public:
    using Clock = std::chrono::steady_clock;
    using WriteFn = std::function<void(std::string_view bytes)>;

    ProgressDisplay(StderrStyle style, WriteFn write, std::function<Clock::time_point()> now);
    ~ProgressDisplay();
    ProgressDisplay(const ProgressDisplay&) = delete;
    ProgressDisplay& operator=(const ProgressDisplay&) = delete;

    void report(const ProgressEvent& event);
    /// Erases the line, if one is drawn, so that the next output starts at column 0.
    void clear();
    /// The line as it would be drawn now, without escape sequences and not cut to the width.
    std::string line() const;

private:
    struct Layer {
        std::int64_t size = 0;       // bytes, once the engine has sent the layer's size
        std::int64_t downloaded = 0; // bytes
        bool done = false;
    };

    void update_layer(const ProgressEvent& event);
    void draw();
    std::string bar(bool coloured) const;
    std::string compose(bool coloured) const;

    StderrStyle m_style;
    WriteFn m_write;
    std::function<Clock::time_point()> m_now;
    std::string m_step;
    std::map<std::string, Layer> m_layers; // of the current pull, by layer id
    std::string m_waiting;                 // what is waited for; empty when nothing is
    Clock::time_point m_waiting_since{};
    int m_spinner = 0;
    bool m_drawn = false;
    Clock::time_point m_last_draw{};
};

/// "12.3 MB": bytes in decimal units, as `docker pull` shows them.
std::string format_bytes(std::int64_t bytes);

} // namespace jitbox::cli
