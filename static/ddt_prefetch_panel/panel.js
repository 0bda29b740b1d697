// Copy buttons and downloads for the prefetch panel.
//
// The toolbar renders inside a shadow root and loads panel HTML after the page, so one
// listener on the document handles every panel render: event.composedPath() sees
// through the shadow boundary. Loaded as an ES module: it runs once per page.

const CONFIRM_MS = 1500;

function panelRoot(button) {
    return button.closest("[data-ddtpp-root]");
}

function textFor(root, key) {
    const source = root.querySelector(`[data-ddtpp-text="${CSS.escape(key)}"]`);
    if (!source) {
        return null;
    }
    return "value" in source && source.tagName === "TEXTAREA" ? source.value : source.textContent;
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
    button.textContent = ok ? "Copied" : "Copy failed";
    button.classList.toggle("ddtpp-copied", ok);
    const status = root.querySelector(".ddtpp-status");
    if (status) {
        status.textContent = ok ? "Copied to the clipboard." : "Could not copy: select the text and copy it by hand.";
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

function onClick(event) {
    for (const node of event.composedPath()) {
        if (!(node instanceof Element)) {
            continue;
        }
        if (node.dataset.ddtppCopy !== undefined) {
            const root = panelRoot(node);
            const text = root && textFor(root, node.dataset.ddtppCopy);
            if (text !== null && text !== undefined) {
                copyText(root, text).then((ok) => confirm(root, node, ok));
            }
            return;
        }
        if (node.dataset.ddtppDownload !== undefined) {
            const root = panelRoot(node);
            if (root) {
                download(root, node.dataset.ddtppDownload);
            }
            return;
        }
    }
}

if (!window.__ddtppInstalled) {
    window.__ddtppInstalled = true;
    document.addEventListener("click", onClick);
}
