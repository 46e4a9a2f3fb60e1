#include "config/kdl.h"

#include <catch2/catch.hpp>

#include <string>

using namespace vmr;
using namespace vmr::config;

namespace {

kdl::Document parseOk(std::string_view text, kdl::Dialect dialect = kdl::Dialect::V2ThenV1)
{
    kdl::ParseOptions opts;
    opts.dialect = dialect;
    auto r = kdl::parseDocument(text, opts);
    INFO((r.ok() ? std::string()
                 : std::to_string(r.error.pos.line) + ":" + std::to_string(r.error.pos.column) + ": " +
                       r.error.message));
    REQUIRE(r.ok());
    return std::move(*r.document);
}

kdl::SyntaxError parseFails(std::string_view text, kdl::Dialect dialect = kdl::Dialect::V2)
{
    kdl::ParseOptions opts;
    opts.dialect = dialect;
    auto r = kdl::parseDocument(text, opts);
    REQUIRE_FALSE(r.ok());
    return r.error;
}

std::string normalise(std::string_view text)
{
    return kdl::format(parseOk(text));
}

}  // namespace

TEST_CASE("nodes keep args, props, children and type annotations", "[kdl]")
{
    auto doc = parseOk("(dev)vm \"web\" 2 key=#true {\n    image \"a.qcow2\"\n    child; other\n}\nnext\n");
    REQUIRE(doc.nodes.size() == 2);
    const auto& vm = doc.nodes[0];
    CHECK(vm.type == "dev");
    CHECK(vm.name == "vm");
    REQUIRE(vm.args.size() == 2);
    CHECK(vm.args[0].kind == kdl::ValueKind::String);
    CHECK(vm.args[0].text == "web");
    CHECK(vm.args[1].kind == kdl::ValueKind::Integer);
    CHECK(vm.args[1].toInt64() == 2);
    REQUIRE(vm.prop("key"));
    CHECK(vm.prop("key")->value.kind == kdl::ValueKind::Boolean);
    CHECK(vm.prop("key")->value.boolean);
    CHECK(vm.hasChildrenBlock);
    REQUIRE(vm.children.size() == 3);
    CHECK(vm.children[0].name == "image");
    CHECK(vm.children[1].name == "child");
    CHECK(vm.children[2].name == "other");
    CHECK(doc.nodes[1].name == "next");
    CHECK_FALSE(doc.nodes[1].hasChildrenBlock);
}

TEST_CASE("positions are kept on nodes, values and property keys", "[kdl]")
{
    auto doc = parseOk("first\n  (t)second  \"x\" k=1\r\n\tthird 42\n");
    REQUIRE(doc.nodes.size() == 3);
    CHECK(doc.nodes[0].pos == kdl::Position{1, 1});
    CHECK(doc.nodes[1].pos == kdl::Position{2, 3});
    CHECK(doc.nodes[1].args[0].pos == kdl::Position{2, 14});
    CHECK(doc.nodes[1].props[0].pos == kdl::Position{2, 18});
    CHECK(doc.nodes[1].props[0].value.pos == kdl::Position{2, 20});
    CHECK(doc.nodes[2].pos == kdl::Position{3, 2});  // CRLF is one line break
    CHECK(doc.nodes[2].args[0].pos == kdl::Position{3, 8});
    // Columns count code points, not bytes.
    auto u = parseOk("ä \"ö\" x\n");
    CHECK(u.nodes[0].args[1].pos == kdl::Position{1, 7});
}

TEST_CASE("the last property with a name wins; all are kept in order", "[kdl]")
{
    auto doc = parseOk("node a=1 b=2 a=3");
    REQUIRE(doc.nodes[0].props.size() == 3);
    CHECK(doc.nodes[0].prop("a")->value.text == "3");
    CHECK(doc.nodes[0].prop("missing") == nullptr);
    CHECK(kdl::format(doc) == "node a=3 b=2\n");
}

TEST_CASE("every string form decodes to the same text", "[kdl]")
{
    auto doc = parseOk(
        "n plain \"plain\" #\"plain\"# ##\"plain\"## \"\"\"\n    plain\n    \"\"\" #\"\"\"\n  plain\n  "
        "\"\"\"#\n");
    REQUIRE(doc.nodes[0].args.size() == 6);
    for (const auto& a : doc.nodes[0].args) {
        CHECK(a.kind == kdl::ValueKind::String);
        CHECK(a.text == "plain");
    }
}

TEST_CASE("escapes, whitespace escapes and raw strings", "[kdl]")
{
    auto doc = parseOk(R"(n "a\tb\n\"\\\s\u{1F600}" "x\   y" #"no \n escape"# ##"has "# inside"##)");
    const auto& a = doc.nodes[0].args;
    CHECK(a[0].text == "a\tb\n\"\\ \xF0\x9F\x98\x80");
    CHECK(a[1].text == "xy");
    CHECK(a[2].text == "no \\n escape");
    CHECK(a[3].text == "has \"# inside");
}

TEST_CASE("multi-line strings are dedented by the closing line", "[kdl]")
{
    auto doc = parseOk("n \"\"\"\n      foo\n    bar\n\n      baz\n    \"\"\"\n");
    CHECK(doc.nodes[0].args[0].text == "  foo\nbar\n\n  baz");
    auto empty = parseOk("n \"\"\"\n  \"\"\"\n");
    CHECK(empty.nodes[0].args[0].text.empty());
    // CRLF inside is one LF.
    auto crlf = parseOk("n \"\"\"\r\n  a\r\n  b\r\n  \"\"\"\r\n");
    CHECK(crlf.nodes[0].args[0].text == "a\nb");
    auto e = parseFails("n \"\"\"\n  a\n \tb\n  \"\"\"\n");
    CHECK(e.message == "Line 2 of this multi-line string does not start with the closing line's indentation");
    CHECK(e.pos == kdl::Position{1, 3});
    CHECK(parseFails("n \"\"\"one line\"\"\"").message ==
          "A \"\"\" multi-line string must start with a line break after \"\"\"");
    CHECK(parseFails("n \"\"\"\n  a\"\"\"").message ==
          "The closing \"\"\" of a multi-line string must be on a line of its own");
}

TEST_CASE("numbers: radixes, underscores, big integers, floats as text", "[kdl]")
{
    auto doc =
        parseOk("n 0x1F 0o17 0b1010 1_000 -0x10 +7 0xFFFFFFFFFFFFFFFFFF 1.5e3 -2.0 1E-7 #inf #-inf #nan");
    const auto& a = doc.nodes[0].args;
    CHECK(a[0].toInt64() == 31);
    CHECK(a[1].toInt64() == 15);
    CHECK(a[2].toInt64() == 10);
    CHECK(a[3].toInt64() == 1000);
    CHECK(a[4].toInt64() == -16);
    CHECK(a[5].toInt64() == 7);
    CHECK(a[6].text == "4722366482869645213695");
    CHECK_FALSE(a[6].toInt64());
    CHECK(a[7].kind == kdl::ValueKind::Float);
    CHECK(a[7].text == "1.5E+3");
    CHECK_FALSE(a[7].toInt64());
    CHECK(a[8].text == "-2.0");
    CHECK(a[9].text == "1E-7");
    CHECK(a[10].kind == kdl::ValueKind::Inf);
    CHECK(a[11].kind == kdl::ValueKind::NegInf);
    CHECK(a[12].kind == kdl::ValueKind::NaN);
    CHECK(a[12].isNumber());
}

TEST_CASE("bad numbers and bare keywords are errors that say what to do", "[kdl]")
{
    auto e = parseFails("node 1.0v2");
    CHECK(e.message == "Invalid number \"1.0v2\": unexpected 'v'");
    CHECK(e.pos == kdl::Position{1, 6});
    CHECK(parseFails("n 0x").message == "Invalid number \"0x\": no digits after the prefix");
    CHECK(parseFails("n 0o8").message == "Invalid number \"0o8\": '8' is not a base-8 digit");
    CHECK(parseFails("n 1.").message == "Invalid number \"1.\": expected a digit after the decimal point");
    CHECK(parseFails("n .5").message == "\".5\" looks like a number but is not one");
    auto kw = parseFails("vm true");
    CHECK(kw.message == "Bare \"true\" is not allowed");
    CHECK(kw.hint == "Write #true for the keyword, or \"true\" for a string");
    CHECK(parseFails("n #yes").message == "Unknown keyword \"#yes\"");
}

TEST_CASE("comments and slashdash remove what they cover", "[kdl]")
{
    auto doc = parseOk(
        "// line\n/* block /* nested */ still */ a /- 1 2 /-k=v {\n  /- b\n  c\n} /-{ d }\n/-e {\n f\n}\n");
    REQUIRE(doc.nodes.size() == 1);
    CHECK(kdl::format(doc) == "a 2 {\n    c\n}\n");
    CHECK(parseFails("a /-").message == "Nothing follows this slashdash /-");
    CHECK(parseFails("a {} 1").message == "Arguments and properties must come before the children block");
    CHECK(parseFails("a {} {}").message == "A node can have only one children block");
    CHECK(parseFails("/* open").message == "Unclosed /* comment");
}

TEST_CASE("syntax errors carry the position of the problem", "[kdl]")
{
    auto e = parseFails("vm \"web\" {\n    image \"x\n}\n");
    CHECK(e.message == "A quoted string cannot contain a line break");
    CHECK(e.pos == kdl::Position{2, 11});
    auto missing = parseFails("vm {\n  a\n");
    CHECK(missing.message == "This children block is never closed");
    CHECK(missing.pos == kdl::Position{1, 4});
    auto space = parseFails("node\"x\"");
    CHECK(space.message == "Expected a space before this argument or property");
    CHECK(space.pos == kdl::Position{1, 5});
    CHECK(parseFails("}").message == "Unexpected } outside a children block");
    CHECK(parseFails("n \"\\q\"").message == "Invalid escape \\q");
    CHECK(parseFails("n \"\\u{D800}\"").message ==
          "\\u{...} must name a Unicode scalar value (not a surrogate, at most 10FFFF)");
    CHECK(parseFails("n \x7f").message == "U+007F may not appear in a KDL document");
    CHECK(parseFails("n \xff").message == "The document is not valid UTF-8");
    CHECK(parseFails("n (t) = 1").message == "Unexpected '='");
    CHECK(parseFails("n (t)k=1").message == "A type annotation cannot come before a property key");
}

TEST_CASE("nesting deeper than maxDepth is refused with a clear error", "[kdl]")
{
    std::string deep;
    for (int i = 0; i < 200; ++i) deep += "a {\n";
    for (int i = 0; i < 200; ++i) deep += "}\n";
    kdl::ParseOptions opts;
    opts.maxDepth = 100;
    auto r = kdl::parseDocument(deep, opts);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error.message == "Children blocks are nested more than 100 deep");
    CHECK(r.error.pos == kdl::Position{101, 3});
    opts.maxDepth = 200;
    CHECK(kdl::parseDocument(deep, opts).ok());
    // Deep block comments and many slashdashes need no stack.
    std::string comments(100000, ' ');
    for (size_t i = 0; i < 50000; i += 2) comments[i] = '/', comments[i + 1] = '*';
    CHECK_FALSE(kdl::parseDocument(comments).ok());
}

TEST_CASE("KDL 1 is the fallback when a document is not KDL 2", "[kdl]")
{
    auto doc = parseOk("node true null r#\"raw\"# \"a\\/b\" key=false\n");
    CHECK(doc.version == kdl::Version::V1);
    const auto& a = doc.nodes[0].args;
    CHECK(a[0].kind == kdl::ValueKind::Boolean);
    CHECK(a[1].kind == kdl::ValueKind::Null);
    CHECK(a[2].text == "raw");
    CHECK(a[3].text == "a/b");
    CHECK(kdl::format(doc) == "node #true #null raw \"a/b\" key=#false\n");
    // Strict KDL 2 refuses it.
    CHECK(parseFails("node true").version == kdl::Version::V2);
    // A KDL 2 document stays KDL 2.
    CHECK(parseOk("node #true bare").version == kdl::Version::V2);
    // KDL 1 strings may span lines; bare words are not values.
    auto multi = parseOk("n \"a\nb\"", kdl::Dialect::V1);
    CHECK(multi.nodes[0].args[0].text == "a\nb");
    CHECK(parseFails("n bare", kdl::Dialect::V1).message == "KDL 1 does not allow a bare word as a value");
    CHECK(parseFails("n key = 1", kdl::Dialect::V1).message == "KDL 1 does not allow spaces around =");
    CHECK(parseFails("a {b}", kdl::Dialect::V1).message ==
          "In KDL 1 the last node of a children block needs a ; or a line break");
    CHECK(parseOk("n \"a\r\nb\"", kdl::Dialect::V1).nodes[0].args[0].text == "a\r\nb");
    // Both fail: the error of the dialect the text looks like.
    CHECK(parseFails("node true \"\\q\"", kdl::Dialect::V2ThenV1).version == kdl::Version::V1);
    CHECK(parseFails("node \"\\q\"", kdl::Dialect::V2ThenV1).version == kdl::Version::V2);
}

TEST_CASE("the version marker picks the dialect", "[kdl]")
{
    CHECK(parseOk("/- kdl-version 1\nnode true", kdl::Dialect::V2).version == kdl::Version::V1);
    auto e = parseFails("/- kdl-version 2\nnode true", kdl::Dialect::V2ThenV1);
    CHECK(e.version == kdl::Version::V2);
    CHECK(e.pos == kdl::Position{2, 6});
    auto v1 = parseFails("/- kdl-version 1\nnode #true", kdl::Dialect::V2);
    CHECK(v1.version == kdl::Version::V1);
}

TEST_CASE("the writer normalises as the KDL test suite asks", "[kdl]")
{
    CHECK(normalise("") == "\n");
    CHECK(normalise("// only a comment\n") == "\n");
    CHECK(normalise("\"node\" \"two words\" z=1 a=\"x\" (\"my type\")0x10 {}\n") ==
          "node \"two words\" (\"my type\")16 a=x z=1\n");
    CHECK(normalise("a {\n b {\n c \"\"\n }\n}") == "a {\n    b {\n        c \"\"\n    }\n}\n");
    CHECK(normalise("n \"1abc\" \"-1\" \".5\" \"true\" \"#x\" \"a=b\" \"\\u{7f}\\u{85}\" +x") ==
          "n \"1abc\" \"-1\" \".5\" \"true\" \"#x\" \"a=b\" \"\\u{7f}\\u{85}\" +x\n");
}

TEST_CASE("format(parse(x)) is stable", "[kdl]")
{
    for (std::string_view text : {"a 1 b=2 {\n c #null\n}", "n \"\"\"\n  x\n  \"\"\" #\"q\"q\"#",
                                  "n 1.0e5 0b1 (t)\"a b\"", "n \"\\\"\\\\\\b\\f\""}) {
        std::string once = normalise(text);
        CHECK(normalise(once) == once);
    }
}

TEST_CASE("lineText splits lines as positions count them", "[kdl]")
{
    std::string_view text =
        "one\r\ntwo\rthree\nfour\xE2\x80\xA8"
        "five";
    CHECK(kdl::lineText(text, 1) == "one");
    CHECK(kdl::lineText(text, 2) == "two");
    CHECK(kdl::lineText(text, 3) == "three");
    CHECK(kdl::lineText(text, 4) == "four");
    CHECK(kdl::lineText(text, 5) == "five");
    CHECK(kdl::lineText(text, 6).empty());
}

TEST_CASE("parse() reports file:line:column as a ParseError", "[kdl]")
{
    auto r = kdl::parse("vm {\n  x \"\n}", "VMFile.kdl");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::ParseError);
    CHECK(r.error().message() == "VMFile.kdl:2:5: A quoted string cannot contain a line break");
    CHECK_FALSE(r.error().hint().empty());
}
