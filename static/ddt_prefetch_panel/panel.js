// Copy buttons, downloads and the stylesheet of the prefetch panel.
//
// DDT loads this ES module with the panel's HTML (after the page, through its render_panel
// view, or inline when RENDER_PANELS is on). A module runs once per page however many times
// its <script> is inserted, so the listener below is installed once. As DDT's own scripts do,
// it is one delegated listener on the toolbar's #djDebug element (inside the #djDebugRoot
// shadow root), which keeps working when DDT replaces the panel's HTML.
//
// DDT's utils.js has the same getDebugElement(), but it is not a public API and a relative
// import across two apps' static files would break with hashed static storages.

const CONFIRM_MS = 1500;

function debugRoot() {
    const host = document.getElementById("djDebugRoot");
    return host ? host.shadowRoot || host : null;
}

function panelRoot(node) {
    return node.closest("[data-ddtpp-root]");
}

// Translated strings are rendered by the template into data attributes of the panel root.
function message(root, name) {
    return root.dataset[name] || "";
}

function textFor(root, key) {
    const source = root.querySelector(`[data-ddtpp-text="${CSS.escape(key)}"]`);
    if (!source) {
        return null;
    }
    return source.tagName === "TEXTAREA" ? source.value : source.textContent;
}

function fallbackCopy(root, text) {
    // navigator.clipboard only exists in secure contexts (https, localhost): plain-http
    // hosts such as Docker or LAN addresses need the older selection-based copy.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "ddtpp-hidden";
    root.appendChild(area);
    area.select();
    let ok = false;
    try {
        ok = document.execCommand("copy");
    } catch (error) {
        ok = false;
    }
    area.remove();
    return ok;
}

async function copyText(root, text) {
    if (navigator.clipboard && window.isSecureContext) {
        try {
            await navigator.clipboard.writeText(text);
            return true;
        } catch (error) {
            // Permission denied or document not focused: try the fallback.
        }
    }
    return fallbackCopy(root, text);
}

function confirm(root, button, ok) {
    const label = button.dataset.ddtppLabel || button.textContent;
    button.dataset.ddtppLabel = label;
    button.textContent = message(root, ok ? "ddtppCopied" : "ddtppCopyFailed");
    button.classList.toggle("ddtpp-copied", ok);
    const status = root.querySelector(".ddtpp-status");
    if (status) {
        status.textContent = message(root, ok ? "ddtppCopiedStatus" : "ddtppCopyFailedStatus");
    }
    window.setTimeout(() => {
        button.textContent = label;
        button.classList.remove("ddtpp-copied");
    }, CONFIRM_MS);
}

function download(root, key) {
    const text = textFor(root, key);
    if (text === null) {
        return;
    }
    const blob = new Blob([text], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "ddt-prefetch-report.json";
    root.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// Links between a fix card and its findings. The panel lives in a shadow root, where a
// fragment link cannot reach: scroll to the target, unfold a collapsed group (library code,
// "this finding's fix alone") on the way, and move the focus there.
function goTo(root, key) {
    const target = root.querySelector(`[data-ddtpp-anchor="${CSS.escape(key)}"]`);
    if (!target) {
        return;
    }
    for (let node = target.parentElement; node && node !== root; node = node.parentElement) {
        if (node.tagName === "DETAILS") {
            node.open = true;
        }
    }
    target.scrollIntoView({ block: "start" });
    target.focus({ preventScroll: true });
    target.classList.add("ddtpp-target");
    window.setTimeout(() => target.classList.remove("ddtpp-target"), CONFIRM_MS);
}

function onClick(event) {
    const button = event.target.closest("[data-ddtpp-copy], [data-ddtpp-download], [data-ddtpp-goto]");
    const root = button && panelRoot(button);
    if (!root) {
        return;
    }
    if (button.dataset.ddtppGoto !== undefined) {
        event.preventDefault();
        goTo(root, button.dataset.ddtppGoto);
    } else if (button.dataset.ddtppCopy !== undefined) {
        const text = textFor(root, button.dataset.ddtppCopy);
        if (text !== null) {
            copyText(root, text).then((ok) => confirm(root, button, ok));
        }
    } else {
        download(root, button.dataset.ddtppDownload);
    }
}

// The stylesheet of panels rendered by DDT's AJAX views. The server rendered them without
// the page's CSP nonce (a stored toolbar has no request), so the template leaves the <link>
// to this script, which copies the nonce DDT's own assets carry (HTMLElement.nonce keeps it
// after the browser hides the attribute). Panels rendered with the page link it themselves.
function ensureStylesheet(scope) {
    const root = scope.querySelector("[data-ddtpp-stylesheet]");
    if (!root || scope.querySelector("link[data-ddtpp-css]")) {
        return;
    }
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = root.dataset.ddtppStylesheet;
    link.dataset.ddtppCss = "";
    const carrier = scope.querySelector("link[nonce], script[nonce]");
    if (carrier && carrier.nonce) {
        link.nonce = carrier.nonce;
    }
    // Last in the toolbar's scope, so its rules come after toolbar.css.
    scope.append(link);
}

function install() {
    const scope = debugRoot();
    const djDebug = scope && scope.querySelector("#djDebug");
    if (!djDebug) {
        return false;
    }
    djDebug.addEventListener("click", onClick);
    djDebug.addEventListener("djdt.panel.render", () => ensureStylesheet(scope));
    // DDT dispatches the first render before this module has loaded.
    ensureStylesheet(scope);
    return true;
}

if (!install()) {
    document.addEventListener("DOMContentLoaded", install, { once: true });
}
