#include "cli/progress.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <string>

using namespace jitbox;
using namespace jitbox::cli;
using namespace std::chrono_literals;

namespace {

// A display that writes into `output` and reads a clock the test moves.
struct Screen {
    std::string output;
    ProgressDisplay::Clock::time_point now{};
    ProgressDisplay display{StderrStyle{true, false, 80},
                            [this](std::string_view bytes) { output += bytes; },
                            [this] { return now; }};
};

int count_of(const std::string& text, const std::string& part) {
    int count = 0;
    for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
        ++count;
    }
    return count;
}

} // namespace

TEST_SUITE("cli progress") {

    TEST_CASE("a step is drawn at once and cleared") {
        Screen screen;

        screen.display.report(progress_step("pulling image busybox:1.36"));
        screen.display.report(progress_step(""));

        CHECK(screen.output == "\rpulling image busybox:1.36\x1b[K\r\x1b[K");
    }

    TEST_CASE("layers add up to one bar") {
        Screen screen;
        screen.display.report(progress_step("pulling image app:1"));
        screen.display.report(progress_layer("a", "Downloading", 1'500'000, 2'000'000));
        screen.display.report(progress_layer("b", "Downloading", 0, 2'000'000));
        screen.display.report(progress_layer("c", "Already exists", 0, 0));

        CHECK(screen.display.line() ==
              "pulling image app:1 [#######.............] 1.5 MB / 4.0 MB, 1/3 layers");

        screen.display.report(progress_layer("a", "Pull complete", 0, 0));
        screen.display.report(progress_layer("b", "Extracting", 10, 2'000'000));

        CHECK(screen.display.line() ==
              "pulling image app:1 [####################] 4.0 MB / 4.0 MB, 2/3 layers");
    }

    TEST_CASE("layers without sizes show no bar") {
        Screen screen;
        screen.display.report(progress_step("pulling image app:1"));
        screen.display.report(progress_layer("a", "Waiting", 0, 0));

        CHECK(screen.display.line() == "pulling image app:1, 0/1 layers");
    }

    TEST_CASE("redraws at most ten times a second") {
        Screen screen;
        screen.display.report(progress_step("pulling image app:1"));
        for (int i = 0; i < 50; ++i) {
            screen.display.report(progress_layer("a", "Downloading", i, 100));
            screen.now += 10ms;
        }

        // The step and the first layer at once, then one redraw at each full 100 ms of 490 ms.
        CHECK(count_of(screen.output, "\r") == 6);
    }

    TEST_CASE("a wait shows a spinner and the seconds waited") {
        Screen screen;
        screen.display.report(progress_waiting("waiting for db to be ready"));
        const std::string first = screen.display.line();
        screen.now += 12s;
        screen.display.report(progress_waiting("waiting for db to be ready"));

        CHECK(first == "/ waiting for db to be ready (0s)");
        CHECK(screen.display.line() == "- waiting for db to be ready (12s)");
    }

    TEST_CASE("lines are cut to the terminal width") {
        std::string output;
        ProgressDisplay display(
            StderrStyle{true, true, 20}, [&output](std::string_view bytes) { output += bytes; },
            [] { return ProgressDisplay::Clock::time_point{}; });

        display.report(progress_step("pulling image registry.example.com/a/very/long/name:1"));

        CHECK(output == "\rpulling image regis\x1b[K");
    }

    TEST_CASE("the bar is green only with colour") {
        std::string output;
        ProgressDisplay display(
            StderrStyle{true, true, 200}, [&output](std::string_view bytes) { output += bytes; },
            [] { return ProgressDisplay::Clock::time_point{}; });

        display.report(progress_step("pulling image app:1"));
        display.report(progress_layer("a", "Downloading", 50, 100));

        CHECK(output.find("[\x1b[32m##########\x1b[0m..........]") != std::string::npos);
    }

    TEST_CASE("the destructor clears a drawn line") {
        std::string output;
        {
            ProgressDisplay display(
                StderrStyle{true, false, 80},
                [&output](std::string_view bytes) { output += bytes; },
                [] { return ProgressDisplay::Clock::time_point{}; });
            display.report(progress_step("removing db"));
        }

        CHECK(output == "\rremoving db\x1b[K\r\x1b[K");
    }

    TEST_CASE("warning_prefix is yellow only with colour") {
        CHECK(warning_prefix(StderrStyle{true, false, 80}) == "jitbox: warning: ");
        CHECK(warning_prefix(StderrStyle{true, true, 80}) == "jitbox: \x1b[33mwarning:\x1b[0m ");
    }

    TEST_CASE("format_bytes uses decimal units") {
        CHECK(format_bytes(0) == "0 B");
        CHECK(format_bytes(999) == "999 B");
        CHECK(format_bytes(1500) == "1.5 kB");
        CHECK(format_bytes(2'000'000) == "2.0 MB");
        CHECK(format_bytes(3'210'000'000) == "3.2 GB");
    }

} // TEST_SUITE
