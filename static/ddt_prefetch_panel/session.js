// The "All requests" tab of the prefetch panel.
//
// The tab bar comes with the panel's HTML (session_tab.html); the session itself is rendered
// by the server from DDT's store each time the tab is opened, so requests made since (AJAX
// calls too) are included and a database store survives a server restart. Copy and download
// buttons inside it are handled by panel.js's delegated listener, as the panel's own are.
// Like panel.js, this is one delegated listener on #djDebug inside the toolbar's shadow root.

function debugRoot() {
    const host = document.getElementById("djDebugRoot");
    return host ? host.shadowRoot || host : null;
}

function setTab(root, name) {
    const area = root.querySelector("[data-ddtpp-session-area]");
    const tabs = root.querySelector("[data-ddtpp-tabs]");
    for (const child of root.children) {
        // Everything of the request view except the tab bar, the status line and the session.
        if (child === area || child === tabs || child.classList.contains("ddtpp-status")) {
            continue;
        }
        if (name === "session") {
            if (!child.hidden) {
                child.hidden = true;
                child.dataset.ddtppHiddenBySession = "";
            }
        } else if (child.dataset.ddtppHiddenBySession !== undefined) {
            child.hidden = false;
            delete child.dataset.ddtppHiddenBySession;
        }
    }
    area.hidden = name !== "session";
    for (const tab of tabs.querySelectorAll("[data-ddtpp-tab]")) {
        tab.setAttribute("aria-selected", String(tab.dataset.ddtppTab === name));
        tab.classList.toggle("ddtpp-tab-active", tab.dataset.ddtppTab === name);
    }
}

async function loadSession(root, tab, djDebug) {
    const area = root.querySelector("[data-ddtpp-session-area]");
    const url = new URL(tab.dataset.ddtppSessionUrl, window.location.href);
    if (djDebug.dataset.requestId) {
        url.searchParams.set("request_id", djDebug.dataset.requestId);
    }
    area.setAttribute("aria-busy", "true");
    area.textContent = tab.dataset.ddtppLoading || "";
    try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok) {
            throw new Error(String(response.status));
        }
        const data = await response.json();
        // Server-rendered by our own template (autoescaped), as DDT inserts panel content.
        area.innerHTML = data.content;
    } catch (error) {
        area.textContent = tab.dataset.ddtppLoadFailed || String(error);
    } finally {
        area.removeAttribute("aria-busy");
    }
}

function install() {
    const scope = debugRoot();
    const djDebug = scope && scope.querySelector("#djDebug");
    if (!djDebug) {
        return false;
    }
    djDebug.addEventListener("click", (event) => {
        const tab = event.target.closest("[data-ddtpp-tab]");
        const root = tab && tab.closest("[data-ddtpp-root]");
        if (!root) {
            return;
        }
        const name = tab.dataset.ddtppTab;
        setTab(root, name);
        if (name === "session") {
            loadSession(root, tab, djDebug);
        }
    });
    return true;
}

if (!install()) {
    document.addEventListener("DOMContentLoaded", install, { once: true });
}
