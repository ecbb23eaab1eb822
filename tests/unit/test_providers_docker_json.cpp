#include "providers/docker_json.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace jitbox;

TEST_SUITE("docker_json lists") {
    TEST_CASE("container list reads each entry") {
        const std::string body = R"([
            {"Id": "c1", "Names": ["/jitbox-db-1"], "State": "running",
             "Labels": {"io.jitbox.sandbox": "s1", "io.jitbox.name": "db", "count": 3},
             "NetworkSettings": {"Networks": {"none": {}}}, "Mounts": []},
            {"Id": "c2", "Names": ["plain"], "State": "exited", "Labels": {}}
        ])";
        const auto entries = docker_json::container_list(body);
        REQUIRE(entries.has_value());
        REQUIRE(entries->size() == 2);
        const LabelledResource& first = entries->at(0);
        CHECK(first.resource.kind == "container");
        CHECK(first.resource.id == "c1");
        CHECK(first.resource.name == "jitbox-db-1");
        CHECK(first.state == "running");
        CHECK(first.labels.size() == 2); // the number-valued label is skipped
        CHECK(first.labels.at("io.jitbox.sandbox") == "s1");
        CHECK(first.labels.at("io.jitbox.name") == "db");
        CHECK(entries->at(1).resource.name == "plain");
        CHECK(entries->at(1).state == "exited");
        CHECK(entries->at(1).labels.empty());
    }

    TEST_CASE("container list tolerates odd entries") {
        const auto entries = docker_json::container_list(
            R"([7, {"Id": 5, "Names": [], "State": null}, {"Names": [1, "/late"]}])");
        REQUIRE(entries.has_value());
        REQUIRE(entries->size() == 3);
        for (const LabelledResource& entry : *entries) {
            CHECK(entry.resource.id.empty());
            CHECK(entry.state.empty());
            CHECK(entry.labels.empty());
        }
        CHECK(entries->at(0).resource.kind.empty()); // not an object: nothing is read
        CHECK(entries->at(1).resource.kind == "container");
        CHECK(entries->at(2).resource.name.empty()); // only the first name counts
    }

    TEST_CASE("container list rejects non-arrays") {
        CHECK_FALSE(docker_json::container_list("").has_value());
        CHECK_FALSE(docker_json::container_list("{}").has_value());
        CHECK_FALSE(docker_json::container_list("[{\"Id\": \"c1\"}").has_value());
        CHECK_FALSE(docker_json::container_list("not json").has_value());
        CHECK(docker_json::container_list("[]").has_value());
    }

    TEST_CASE("network list reads each entry") {
        const auto entries = docker_json::network_list(
            R"([{"Id": "n1", "Name": "jitbox-db-1", "Labels": {"io.jitbox.sandbox": "s1"}}])");
        REQUIRE(entries.has_value());
        REQUIRE(entries->size() == 1);
        CHECK(entries->at(0).resource.kind == "network");
        CHECK(entries->at(0).resource.id == "n1");
        CHECK(entries->at(0).resource.name == "jitbox-db-1");
        CHECK(entries->at(0).state.empty());
        CHECK(entries->at(0).labels.at("io.jitbox.sandbox") == "s1");
    }
}
