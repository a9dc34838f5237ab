"""rrweb's vocabulary as a zstd dictionary, shipped with Hindsight: what any DOM recording
of any site says, and nothing that one site's recording says.

Used where an account has no text of its own yet (docs/DECISIONS.md, "An account's first
recording"): a recording blob (a stylesheet, a snapshot's subtree) and the segments an
account stores before its own dictionary exists are zstd frames compressed with it. It
holds, written out below by hand:
- rrweb 2.2.2's event shapes (the JSON keys and numbers of @rrweb/types: event types,
  incremental sources, mouse interactions, serialized node types and their fields), as
  rrweb's recorder writes them (JSON.stringify: no spaces, keys in its order);
- HTML's element and attribute names (the HTML Living Standard's index; SVG's common ones),
  in the shape of a serialized element (`"tagName":"div","attributes":{"class":"`);
- CSS property names and common keywords (the CSS specifications' property index), in the
  shape a browser serializes a rule (`.a { display: flex; }`), as rrweb inlines stylesheets.
No recorded data of any account or site, and nothing taken from the demo site or from what
bench/recording.py records.

The bytes are built from these lists by `build()`, deterministically, and named by their
SHA-256 (`SHA256`). Segments and blobs stored with it name it by that hash like any other
dictionary, so **these bytes must never change**: a change makes every row stored with it
unreadable (tests/test_recording_codec.py checks the hash). A better vocabulary would be a
new dictionary with a new hash, this one kept for the rows that name it.
"""

from __future__ import annotations

import functools

# @rrweb/types: EventType, IncrementalSource, MouseInteractions, NodeType (their numbers).
_EVENTS = [
    '{"type":4,"data":{"href":"https://www.',
    '","width":1280,"height":720},"timestamp":17',
    '{"type":2,"data":{"node":{"type":0,"childNodes":[{"type":1,"name":"html","publicId":"","systemId":"","id":2},'
    '{"type":2,"tagName":"html","attributes":{"lang":"en"},"childNodes":[{"type":2,"tagName":"head",'
    '"attributes":{},"childNodes":[{"type":3,"textContent":"\\n    ","id":5},{"type":2,"tagName":"meta",'
    '"attributes":{"charset":"utf-8"},"childNodes":[],"id":6},{"type":2,"tagName":"meta","attributes":'
    '{"name":"viewport","content":"width=device-width, initial-scale=1"},"childNodes":[],"id":',
    '{"type":2,"tagName":"title","attributes":{},"childNodes":[{"type":3,"textContent":"',
    '{"type":2,"tagName":"link","attributes":{"rel":"stylesheet","href":"https://',
    '.css","_cssText":"',
    '{"type":2,"tagName":"style","attributes":{"_cssText":"',
    '{"type":2,"tagName":"script","attributes":{"src":"https://',
    '"childNodes":[{"type":3,"textContent":"SCRIPT_PLACEHOLDER","id":',
    '{"type":2,"tagName":"noscript","attributes":{},"childNodes":[',
    '{"type":2,"tagName":"body","attributes":{"class":"',
    '{"type":5,"textContent":"',
    '{"type":4,"textContent":"',
    '"isStyle":true,"id":',
    '"isSVG":true,"id":',
    '"compatMode":"CSS1Compat","id":1},"initialOffset":{"left":0,"top":0}},"timestamp":17',
    '"rootId":',
    '"isShadowHost":true,',
    '"isShadow":true,',
    '"needBlock":true,',
    '"rr_width":"',
    '"rr_height":"',
    '"rr_dataURL":"data:image/png;base64,',
    '"rr_scrollLeft":',
    '"rr_scrollTop":',
    '"rr_mediaState":"paused","rr_mediaCurrentTime":0,',
    '{"type":0,"data":{},"timestamp":17',
    '{"type":1,"data":{},"timestamp":17',
    '{"type":5,"data":{"tag":"',
    '","payload":{',
    '{"type":6,"data":{"plugin":"rrweb/console@1","payload":{"level":"log","trace":[],"payload":["',
    '{"type":3,"data":{"source":0,"texts":[{"id":',
    ',"value":"',
    '"}],"attributes":[{"id":',
    ',"attributes":{"style":{"',
    ',"attributes":{"class":"',
    '"}}],"removes":[{"parentId":',
    ',"id":',
    '}],"adds":[{"parentId":',
    ',"nextId":null,"node":{"type":3,"textContent":"',
    ',"nextId":',
    ',"node":{"type":2,"tagName":"',
    '","attributes":{},"childNodes":[],"id":',
    '"isAttachIframe":true',
    '{"type":3,"data":{"source":0,"texts":[],"attributes":[],"removes":[],"adds":[{"parentId":',
    '{"type":3,"data":{"source":13,"id":',
    ',"set":{"property":"',
    ',"remove":{"property":"',
    '{"type":3,"data":{"source":8,"id":',
    ',"adds":[{"rule":"',
    ',"index":',
    ',"removes":[{"index":',
    '{"type":3,"data":{"source":14,"ranges":[{"start":',
    ',"startOffset":',
    ',"end":',
    ',"endOffset":',
    '{"type":3,"data":{"source":15,"id":',
    ',"styleIds":[',
    '{"type":3,"data":{"source":7,"type":0,"id":',
    ',"currentTime":',
    ',"volume":1,"muted":false,"loop":false,"playbackRate":1',
    '{"type":3,"data":{"source":12,"positions":[{"x":',
    '{"type":3,"data":{"source":6,"positions":[{"x":',
    '{"type":3,"data":{"source":10,"family":"',
    '{"type":3,"data":{"source":9,"id":',
    '{"type":3,"data":{"source":4,"width":',
    ',"height":',
    '{"type":3,"data":{"source":5,"text":"',
    '","isChecked":false,"id":',
    '","isChecked":true,"id":',
    '{"type":3,"data":{"source":3,"id":',
    ',"x":0,"y":',
    '{"type":3,"data":{"source":2,"type":5,"id":',
    '{"type":3,"data":{"source":2,"type":6,"id":',
    '{"type":3,"data":{"source":2,"type":0,"id":',
    '{"type":3,"data":{"source":2,"type":1,"id":',
    '{"type":3,"data":{"source":2,"type":2,"id":',
    ',"x":',
    ',"y":',
    ',"pointerType":0},"timestamp":17',
    '{"type":3,"data":{"source":1,"positions":[{"x":',
    ',"timeOffset":-',
    '},{"x":',
    '}]},"timestamp":17',
]

# The HTML Living Standard's elements, and SVG's common ones.
_TAGS = """html head title base link meta style body article section nav aside h1 h2 h3 h4 h5 h6 hgroup
header footer address p hr pre blockquote ol ul menu li dl dt dd figure figcaption main search div a em
strong small s cite q dfn abbr ruby rt rp data time code var samp kbd sub sup i b u mark bdi bdo span br
wbr ins del picture source img iframe embed object video audio track map area table caption colgroup col
tbody thead tfoot tr td th form label input button select datalist optgroup option textarea output
progress meter fieldset legend details summary dialog script noscript template slot canvas svg g path
circle rect line polyline polygon ellipse use defs symbol clipPath linearGradient stop mask text
tspan""".split()
# Their attributes (global ones, the common element-specific ones, ARIA's, SVG's).
_ATTRIBUTES = """class id style title lang dir hidden tabindex role href src alt type name value placeholder
for rel content charset http-equiv action method target width height srcset sizes loading decoding
crossorigin integrity media autocomplete autofocus required disabled readonly checked selected multiple
min max step pattern maxlength minlength size rows cols colspan rowspan scope headers label download
referrerpolicy sandbox allow allowfullscreen poster preload controls autoplay muted loop playsinline
datetime open accept enctype novalidate form list spellcheck contenteditable draggable translate
inputmode enterkeyhint is slot part nonce async defer aria-label aria-hidden aria-expanded
aria-controls aria-describedby aria-labelledby aria-current aria-haspopup aria-live aria-selected
aria-checked aria-disabled aria-modal aria-pressed data-testid data-id xmlns xmlns:xlink viewBox fill
stroke stroke-width stroke-linecap stroke-linejoin fill-rule clip-rule d x y cx cy r rx ry x1 y1 x2 y2
points transform opacity focusable preserveAspectRatio version xlink:href""".split()
# The CSS specifications' most used properties; the most common last (nearer the end of a
# raw dictionary is cheaper to refer to).
_PROPERTIES = """accent-color align-content align-self animation-delay animation-direction
animation-duration animation-fill-mode animation-iteration-count animation-name
animation-timing-function appearance aspect-ratio backdrop-filter backface-visibility
background-attachment background-clip background-image background-position background-repeat
background-size block-size border-bottom border-bottom-color border-bottom-left-radius
border-bottom-right-radius border-bottom-style border-bottom-width border-collapse border-color
border-image border-left border-left-color border-left-style border-left-width border-right
border-right-color border-right-style border-right-width border-spacing border-style border-top
border-top-color border-top-left-radius border-top-right-radius border-top-style border-top-width
border-width bottom box-shadow break-inside caption-side caret-color clear clip clip-path color-scheme
column-count column-gap columns contain content counter-increment counter-reset cursor direction
empty-cells fill filter flex-basis flex-flow flex-grow flex-shrink flex-wrap float font font-display
font-feature-settings font-style font-variant font-variant-numeric gap grid-area grid-auto-columns
grid-auto-flow grid-auto-rows grid-column grid-column-end grid-column-start grid-row grid-row-end
grid-row-start grid-template-areas grid-template-columns grid-template-rows hyphens inline-size inset
isolation justify-items justify-self left letter-spacing line-clamp list-style list-style-position
list-style-type margin-block margin-bottom margin-inline margin-left margin-right margin-top mask
max-height max-width min-height min-width mix-blend-mode object-fit object-position order outline
outline-color outline-offset outline-style outline-width overflow-wrap overflow-x overflow-y
overscroll-behavior padding-block padding-bottom padding-inline padding-left padding-right
padding-top place-items perspective pointer-events resize right row-gap scroll-behavior
scroll-snap-type scrollbar-width stroke table-layout tab-size text-decoration-color
text-decoration-line text-indent text-overflow text-rendering text-shadow text-underline-offset
top touch-action transform-origin transition-delay transition-duration transition-property
transition-timing-function unicode-range user-select vertical-align visibility white-space
will-change word-break word-spacing word-wrap writing-mode z-index -webkit-font-smoothing
-moz-osx-font-smoothing -webkit-text-size-adjust -webkit-appearance -webkit-tap-highlight-color
src transition transform text-transform opacity flex-direction flex justify-content align-items
position overflow height width border-radius border line-height text-decoration text-align
font-weight font-size font-family background background-color box-sizing display padding margin
color""".split()
# Their common values, as a browser serializes them.
_VALUES = [
    "none", "auto", "inherit", "initial", "unset", "normal", "bold", "italic", "block", "inline",
    "inline-block", "inline-flex", "flex", "grid", "contents", "table", "relative", "absolute",
    "fixed", "sticky", "static", "hidden", "visible", "scroll", "center", "flex-start", "flex-end",
    "space-between", "space-around", "stretch", "baseline", "column", "row", "wrap", "nowrap",
    "pointer", "default", "solid", "dashed", "dotted", "transparent", "currentcolor", "uppercase",
    "underline", "ellipsis", "break-word", "border-box", "content-box", "cover", "contain",
    "no-repeat", "ease", "ease-in-out", "ease-in", "ease-out", "linear", "infinite", "swap",
    "translate(-50%, -50%)", "translateX(", "translateY(", "rotate(", "scale(", "calc(100% - ",
    "var(--", "rgba(0, 0, 0, 0.", "rgba(255, 255, 255, 0.", "rgb(255, 255, 255)", "rgb(0, 0, 0)",
    "linear-gradient(", "url(\\\"data:image/svg+xml,", "url(\\\"https://", "!important",
    "system-ui, -apple-system, \\\"Segoe UI\\\", Roboto, \\\"Helvetica Neue\\\", Arial, sans-serif",
    "-apple-system, BlinkMacSystemFont, \\\"Segoe UI\\\", Roboto, Helvetica, Arial, sans-serif",
    "ui-monospace, SFMono-Regular, Menlo, Monaco, Consolas, monospace", "sans-serif", "serif",
    "monospace", "100%", "50%", "1px solid ", "0px", "0px auto", "1rem", "0.5rem", "0.25rem",
    "1.5", "1.25rem", "2rem", "400", "500", "600", "700", "0.2s", "0.3s", "100vh", "100vw",
]
_CSS = [
    "@charset \\\"UTF-8\\\";",
    ":root { --",
    "*, ::before, ::after { box-sizing: border-box; }",
    "html { line-height: 1.15; -webkit-text-size-adjust: 100%; }",
    "body { margin: 0px; font-family: ",
    "a { color: inherit; text-decoration: none; }",
    "a:hover { text-decoration: underline; }",
    "img, svg { vertical-align: middle; }",
    "button, input, select, textarea { font: inherit; }",
    "button:hover { ",
    ":focus-visible { outline: ",
    "::placeholder { color: ",
    "[hidden] { display: none !important; }",
    "@font-face { font-family: \\\"",
    "@keyframes ",
    "@media (prefers-color-scheme: dark) { ",
    "@media (prefers-reduced-motion: reduce) { ",
    "@media (min-width: 768px) { ",
    "@media (max-width: 640px) { ",
    "@media screen and (max-width: ",
    ":hover { ", ":active { ", ":focus { ", ":disabled { ", ":checked { ", ":first-child { ",
    ":last-child { ", ":not(:last-child) { ", ":nth-child(2n) { ", "::before { content: \\\"\\\"; ",
    "::after { ", " > ", " + ", " ~ ",
]


def _element(tag: str) -> str:
    return '{"type":2,"tagName":"' + tag + '","attributes":{'


@functools.cache
def build() -> bytes:
    """The dictionary's bytes (UTF-8; always the same: see the module's docstring)."""
    parts = [",".join(f'"{name}":"' for name in _ATTRIBUTES),
             "".join(_element(tag) for tag in _TAGS),
             ";".join(f" {value}: " for value in _VALUES),
             "".join(f" {name}: ;" for name in _PROPERTIES),
             "".join(_CSS),
             ",".join(_EVENTS),
             '"childNodes":[],"id":', '},"childNodes":[{"type":3,"textContent":"', '"}],"id":',
             '{"type":2,"tagName":"div","attributes":{"class":"', '"},"childNodes":[']
    return "\n".join(parts).encode()


# The SHA-256 of build(): recording_codec refuses to start if the bytes ever differ.
SHA256 = bytes.fromhex("07b6958271d52411c4c0a2e4c396a21e8948723a2317f7a0aaa81cc0c93f011e")

