#!/bin/sh
# Writes the dafl(3) manual page (troff) from the comments of the public header, so that
# the page cannot drift from the API it documents.  Run by the build (docs/man); by hand:
#   scripts/gen_man.sh include/dafl.h README.md dafl.3 0.1.0 && man -l dafl.3
#
# It reads the header's own conventions:
#   - the opening comment becomes DESCRIPTION; a short line followed by indented text is
#     a subsection, "- " starts a bullet, "NAME   text" a tagged paragraph;
#   - "/* ---- title ---- */" starts a subsection of the API;
#   - a "/** ... */" comment documents the declaration after it; a plain "/* ... */"
#     comment is prose for the subsection;
#   - a line indented deeper than the comment's text (a formula) is kept as it is;
#   - "/**< ... */" after a struct member or enumerator becomes that member's entry;
#   - the export macro, include guard and extern "C" lines are left out.
# EXAMPLES is the README's first ```c block: the example that debian/tests/readme-example
# compiles and runs against the installed packages.
# POSIX awk only (Debian's default awk is mawk).
#
# usage: gen_man.sh HEADER README OUTPUT VERSION
set -eu

header=$1
readme=$2
output=$3
version=$4

program=$(cat <<'AWK'
function ltrim(s) { sub(/^[ \t]+/, "", s); return s }
function rtrim(s) { sub(/[ \t]+$/, "", s); return s }
function trim(s) { return rtrim(ltrim(s)) }
function spaces(n,   s) { s = ""; while (n-- > 0) s = s " "; return s }

# Text for troff: a backslash is \e, a hyphen is \- (so that code copied from the page
# works), and a line may not start with a control character.
function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    if (s ~ /^[.']/) s = "\\&" s
    return s
}

# Running text: as esc(), and `name` or *word* in the header becomes italic.
function esctext(s,   out) {
    s = esc(s)
    out = ""
    while (match(s, /`[^`]*`|\*[A-Za-z]+\*/)) {
        out = out substr(s, 1, RSTART - 1) "\\fI" substr(s, RSTART + 1, RLENGTH - 2) "\\fP"
        s = substr(s, RSTART + RLENGTH)
    }
    return out s
}

# Joins the pieces of s (split at sep, a literal string) into lines of at most 72
# columns, the first indented by `first`, the others by `indent` columns; tail ends every
# line but the last (a macro's backslash).
function emit_wrapped(s, sep, first, indent, tail,   n, parts, i, line) {
    n = 0
    while ((i = index(s, sep)) > 0) { parts[++n] = substr(s, 1, i - 1); s = substr(s, i + length(sep)) }
    parts[++n] = s
    line = spaces(first) parts[1]
    for (i = 2; i <= n; i++) {
        if (length(line) + length(sep) + length(parts[i]) > 72) {
            print esc(rtrim(line sep) tail)
            line = spaces(indent) parts[i]
        } else {
            line = line sep parts[i]
        }
    }
    print esc(line)
}

# One C declaration, broken after commas and continued under the opening parenthesis
# (or 4 columns in when that is far right).
function emit_code(s, indent) { emit_wrapped(s, ", ", 0, indent, "") }

# One macro: on one line when it fits, else its value on continuation lines as a C
# header would write it.
function emit_macro(s,   name, value) {
    if (length(s) <= 72) { print esc(s); return }
    name = s; sub(/^#define[ \t]+/, "", name); sub(/[ \t(].*$/, "", name)
    value = s; sub(/^#define[ \t]+[A-Za-z0-9_]+[ \t]*/, "", value)
    print esc("#define " name " \\")
    emit_wrapped(value, index(value, ", ") ? ", " : " ", 4, 4, " \\")
}

function collapse(s) { gsub(/[ \t]+/, " ", s); sub(/\( /, "(", s); return trim(s) }

# ---- comments -------------------------------------------------------------------------
# A comment is kept as lines of text with the column each starts at: the markers (/**,
# /*, *, */) are blanked out, not removed, so indentation keeps its meaning.
function add_comment_line(raw) {
    sub(/[ \t]*\*\/[ \t]*$/, "", raw)
    if (match(raw, /^[ \t]*\/\*\*?/)) raw = spaces(RLENGTH) substr(raw, RLENGTH + 1)
    else if (match(raw, /^[ \t]*\*/)) raw = spaces(RLENGTH) substr(raw, RLENGTH + 1)
    ncom++
    ctext[ncom] = trim(raw)
    ccol[ncom] = match(raw, /[^ ]/)
}

function close_pre() { if (ctx == "pre") { print ".EE"; print ".RE" } }

# Renders comment lines 1..ncom as man text.  top: the header's opening comment, whose
# unindented short lines are subsection titles.
function render_prose(top,   i, j, n, pieces, t, c, base, sec, pending_pp, term, rest) {
    base = 0
    for (i = 1; i <= ncom; i++) if (ctext[i] != "") { base = ccol[i]; break }
    sec = base; ctx = ""; pending_pp = 0; printed = 0
    for (i = 1; i <= ncom; i++) {
        t = ctext[i]; c = ccol[i]
        if (t != "") printed = 1
        if (t == "") {
            close_pre(); ctx = ""
            # A blank line starts a new paragraph, unless nothing has been written yet.
            pending_pp = printed
            continue
        }
        if (top && c == base && (i == 1 || ctext[i - 1] == "") && i < ncom &&
            ctext[i + 1] != "" && ccol[i + 1] > c && t !~ /[.:;,]$/) {
            close_pre(); ctx = ""; pending_pp = 0
            print ".SS"
            print esc(t)
            sec = ccol[i + 1]
            continue
        }
        if (t ~ /^- /) {
            close_pre()
            print ".IP \\(bu 2"
            print esctext(substr(t, 3))
            ctx = "list"; ctxcol = c; pending_pp = 0
            continue
        }
        if (c == sec && t ~ /^[A-Z][A-Z_]+   *[^ ]/) {
            close_pre()
            term = t; sub(/ .*/, "", term)
            rest = t; sub(/^[^ ]+ +/, "", rest)
            print ".TP"
            print ".B " esc(term)
            print esctext(rest)
            ctx = "list"; ctxcol = c; pending_pp = 0
            continue
        }
        if (ctx == "list" && c > ctxcol) { print esctext(t); continue }
        if (c >= sec + 2) {
            if (ctx != "pre") {
                if (ctx == "list") print ".PP"
                print ".RS 4"; print ".EX"
                ctx = "pre"; precol = c
            }
            # Formulas that share a line (separated by ",  ") get one line each when
            # the line would not fit.
            if (length(t) > 56) gsub(/,  +/, ",\n", t)
            n = split(t, pieces, "\n")
            for (j = 1; j <= n; j++) print esc(spaces(c - precol) pieces[j])
            continue
        }
        close_pre()
        if (ctx == "list" || pending_pp) print ".PP"
        ctx = ""; pending_pp = 0
        print esctext(t)
    }
    close_pre(); ctx = ""
    ncom = 0
}

# ---- declarations ---------------------------------------------------------------------
# Prints the declaration collected in code[1..ncode], then its members' comments, then
# the /** */ comment that preceded it.
function render_item(   i, s, name, n, decl, kind, indented) {
    print ".PP"
    print ".EX"
    kind = code[1]
    if (kind ~ /^#define/) {
        # Adjacent macros share one block; a macro continued with backslashes is joined.
        s = ""
        for (i = 1; i <= ncode; i++) {
            decl = code[i]
            if (decl ~ /\\[ \t]*$/) { sub(/\\[ \t]*$/, "", decl); s = s " " decl; continue }
            emit_macro(collapse(s " " decl))
            s = ""
        }
    } else if (kind ~ /{[ \t]*$/) {
        # A struct or enum: its members without their comments, then one entry each.
        print esc(collapse(code[1]))
        for (i = 2; i < ncode; i++) {
            decl = code[i]
            if (index(decl, "/**<")) decl = substr(decl, 1, index(decl, "/**<") - 1)
            if (trim(decl) != "") print esc("    " collapse(decl))
        }
        print esc(collapse(code[ncode]))
    } else {
        s = ""
        for (i = 1; i <= ncode; i++) s = s " " code[i]
        s = collapse(s)
        sub(/^DAFL_API /, "", s)
        n = index(s, "(")
        if (s ~ /^typedef [^(]*\(\*/) n = index(substr(s, n + 1), "(") + n
        emit_code(s, n <= 40 ? n : 4)
    }
    print ".EE"
    indented = (nmember > 0 || ncom > 0)
    if (indented) print ".RS"
    if (nmember > 0) {
        for (i = 1; i <= nmember; i++) {
            print ".TP"
            print ".B " esc(mname[i])
            print esctext(mtext[i])
        }
        if (ncom > 0) print ".PP"
    }
    if (ncom > 0) render_prose(0)
    if (indented) print ".RE"
    ncode = 0; nmember = 0; ncom = 0
}

# Collects the "/**< ... */" comment of a struct member or enumerator (it may go on over
# several lines).
function add_member(line,   decl, comment, name) {
    if (in_member_comment) {
        comment = line
        if (sub(/\*\/.*$/, "", comment)) in_member_comment = 0
        mtext[nmember] = mtext[nmember] " " trim(comment)
        code[ncode] = ""
        return
    }
    if (!index(line, "/**<")) return
    decl = trim(substr(line, 1, index(line, "/**<") - 1))
    comment = substr(line, index(line, "/**<") + 4)
    in_member_comment = !sub(/\*\/.*$/, "", comment)
    if (decl ~ /=/) { name = decl; sub(/[ \t]*=.*/, "", name) }
    else { name = decl; sub(/[ \t]*;.*$/, "", name); sub(/^.*[ *]/, "", name); sub(/\[.*/, "", name) }
    nmember++
    mname[nmember] = name
    mtext[nmember] = trim(comment)
}

BEGIN { state = "top"; ncom = 0; ncode = 0; nmember = 0 }

# The opening comment: its first line names the library, the rest is DESCRIPTION.
state == "top" {
    if (NR == 1) next
    if (NR == 2) {
        whatis = $0
        sub(/^[ \t]*\*[ \t]*dafl\.h[ \t]+[^ \t]+[ \t]+/, "", whatis)
        sub(/\.[ \t]*$/, "", whatis)
        print ".TH DAFL 3 \"\" \"dafl " version "\" \"dafl Library Functions Manual\""
        print ".SH NAME"
        print "dafl \\- " esc(whatis)
        print ".SH SYNOPSIS"
        print ".nf"
        print ".B #include <dafl.h>"
        print ".fi"
        print ".PP"
        print "Compile and link with"
        print ".BR \"pkg\\-config \\-\\-cflags \\-\\-libs dafl\" ;"
        print "the static library also needs"
        print ".B \"pkg\\-config \\-\\-static \\-\\-libs dafl\""
        print "(SLEEF, libm and the threads library)."
        print ".SH DESCRIPTION"
        next
    }
    add_comment_line($0)
    if ($0 ~ /\*\/[ \t]*$/) {
        render_prose(1)
        print ".SH API"
        state = "body"
    }
    next
}

# Inside a /* ... */ or /** ... */ comment.
state == "comment" {
    add_comment_line($0)
    if ($0 ~ /\*\/[ \t]*$/) {
        state = "body"
        if (!comment_is_doc) render_prose(0)
    }
    next
}

# Inside a declaration that runs over several lines.
state == "code" {
    code[++ncode] = $0
    if (kind == "braces") {
        if ($0 ~ /^}/) { render_item(); state = "body" } else add_member($0)
    } else if (kind == "macro") {
        if ($0 !~ /\\[ \t]*$/) state = "macro_end"
    } else if ($0 ~ /;/) { render_item(); state = "body" }
    next
}

# After a macro: another #define joins the block, anything else closes it.
state == "macro_end" {
    if ($0 ~ /^#define/) {
        code[++ncode] = $0
        state = ($0 ~ /\\[ \t]*$/) ? "code" : "macro_end"
        next
    }
    render_item(); state = "body"
}

# A header section's closing lines: nothing after them is API.
/^#ifdef __cplusplus/ { skipping_cplusplus = 1 }
skipping_cplusplus { if ($0 ~ /^#endif/) skipping_cplusplus = 0; next }

/^\/\* ---- .* -+ \*\/[ \t]*$/ {
    title = $0
    sub(/^\/\* ---- /, "", title); sub(/ -+ \*\/[ \t]*$/, "", title)
    # The export macro is how the library builds itself, not something to call.
    skipping_section = (title == "export macro")
    if (!skipping_section) { print ".SS"; print esc(title) }
    next
}
skipping_section && !/^\/\* ---- / { next }

/^#ifndef DAFL_H|^#define DAFL_H|^#endif|^#include|^[ \t]*$/ { next }

/^[ \t]*\/\*/ {
    comment_is_doc = ($0 ~ /^[ \t]*\/\*\*/)
    ncom = 0
    add_comment_line($0)
    if ($0 !~ /\*\/[ \t]*$/) state = "comment"
    else if (!comment_is_doc) render_prose(0)
    next
}

/^#define/ {
    ncode = 0; code[++ncode] = $0
    kind = "macro"
    state = ($0 ~ /\\[ \t]*$/) ? "code" : "macro_end"
    next
}

{
    ncode = 0; code[++ncode] = $0; nmember = 0; in_member_comment = 0
    if ($0 ~ /{[ \t]*$/) { kind = "braces"; state = "code" }
    else if ($0 ~ /;/) { render_item() }
    else { kind = "statement"; state = "code" }
}

END {
    if (state == "macro_end") render_item()
    print ".SH RETURN VALUE"
    print "Every function that returns"
    print ".B dafl_status"
    print "returns"
    print ".B DAFL_OK"
    print "on success.  Otherwise it returns the first error found while validating its"
    print "arguments, and has written nothing to any of its outputs;"
    print ".BR dafl_status_string ()"
    print "names the error."
    print ".SH ENVIRONMENT"
    print ".TP"
    print ".B DAFL_ISA"
    print "The instruction set used until"
    print ".BR dafl_set_isa ()"
    print "is called:"
    print ".BR scalar \", \" avx2 \", \" avx512 \", \" neon \" or \" auto"
    print "(the default).  An unknown or unavailable name falls back to"
    print ".B auto"
    print "with one warning on standard error."
    print ".SH EXAMPLES"
    print "A complete program (the example of the README, which the Debian package's"
    print "autopkgtest compiles and runs):"
    print ".PP"
    print ".EX"
    inside = 0; lines = 0
    while ((getline line < example) > 0) {
        if (!inside && line ~ /^```c$/) { inside = 1; continue }
        if (inside && line ~ /^```$/) break
        if (inside) { print esc(line); lines++ }
    }
    if (lines == 0) { print "gen_man.sh: no ```c block in " example > "/dev/stderr"; exit 1 }
    print ".EE"
    print ".PP"
    print "Built and run with"
    print ".PP"
    print ".EX"
    print esc("cc example.c $(pkg-config --cflags --libs dafl) -o example && ./example")
    print ".EE"
    print ".SH SEE ALSO"
    print ".BR pkg\\-config (1)"
    print ".PP"
    print "The README of the library (README.md in its sources), with an example and the"
    print "measured accuracy; on Debian it is in"
    print ".IR /usr/share/doc/libdafl\\-dev/ ."
}
AWK
)

awk -v version="$version" -v example="$readme" "$program" "$header" > "$output.tmp"
mv "$output.tmp" "$output"
