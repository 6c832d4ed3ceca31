// Starts GraphiQL on the session service's own page, keeping the session between operations as a
// shop client would. Cookie mode (TOKEN_METHOD has "cookie"): the browser keeps the HttpOnly session
// cookie and every request is sent with credentials "same-origin". Bearer mode (only "bearer"): the
// token of the AUTH_TOKEN_HEADER response header is kept for this tab, shown in the bar above the
// editor, and sent back as "Authorization: Bearer <token>" unless the headers editor sets its own.
// With both (the default), the cookie carries the session and the bar shows the last token issued.
(function () {
  "use strict";

  var STORAGE_KEY = "session-service.playground.bearer-token";
  var DEFAULT_QUERY = [
    "# The session service's playground: run an operation with",
    "# Ctrl-Enter or the run button. A guest puts something in",
    "# the cart (a session starts), then looks at that session.",
    "",
    "mutation AddItem {",
    '  addItemToOrder(productVariantId: "42", quantity: 2) {',
    "    id",
    "    code",
    "    userId",
    "    lines { productVariantId quantity }",
    "  }",
    "}",
    "",
    "query ActiveSession {",
    "  activeSession {",
    "    id",
    "    activeOrderId",
    "    activeChannelId",
    "    user { identifier }",
    "  }",
    "  activeOrder { id lines { productVariantId quantity } }",
    "}",
    "",
  ].join("\n");

  var container = document.getElementById("graphiql");
  var bar = document.getElementById("session-bar");
  var methods = (container.dataset.tokenMethods || "").split(",");
  var tokenHeader = container.dataset.tokenHeader || "";
  var cookieName = container.dataset.cookieName || "";
  var cookieMode = methods.indexOf("cookie") >= 0;
  var bearerMode = methods.indexOf("bearer") >= 0;
  var sendsBearer = bearerMode && !cookieMode;
  var token = sendsBearer ? readStoredToken() : null;
  // GraphiQL's dialogs add a <style> element with this nonce (the page's policy allows no other).
  window.__webpack_nonce__ = container.dataset.styleNonce;

  function readStoredToken() {
    try {
      return window.sessionStorage.getItem(STORAGE_KEY);
    } catch (error) {
      return null;
    }
  }

  function storeToken(value) {
    token = value;
    try {
      if (value) {
        window.sessionStorage.setItem(STORAGE_KEY, value);
      } else {
        window.sessionStorage.removeItem(STORAGE_KEY);
      }
    } catch (error) {
      // Storage may be disabled; the token then lasts as long as the page.
    }
    renderBar();
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function renderBar() {
    bar.replaceChildren();
    if (cookieMode) {
      bar.append(
        element("span", "session-bar-label", "Session"),
        element("span", null, "kept by the browser in the HttpOnly cookie "),
        element("code", null, cookieName),
        element("span", null, ", sent with every operation.")
      );
    }
    if (!bearerMode) return;
    var label = sendsBearer ? "Bearer token" : "Last token";
    bar.append(element("span", "session-bar-label", label));
    if (token) {
      bar.append(element("code", "session-token", token));
    } else {
      bar.append(element("span", "session-token-none", "none yet"));
    }
    bar.append(element("span", null, sendsBearer
      ? " from the " + tokenHeader + " response header, sent back as Authorization: Bearer."
      : " from the " + tokenHeader + " response header."));
    if (sendsBearer && token) {
      var forget = element("button", "session-forget", "Forget");
      forget.type = "button";
      forget.addEventListener("click", function () {
        storeToken(null);
      });
      bar.append(forget);
    }
  }

  function sessionFetch(url, init) {
    var options = Object.assign({}, init, { credentials: "same-origin" });
    var headers = new Headers(options.headers || {});
    if (sendsBearer && token && !headers.has("authorization")) {
      headers.set("authorization", "Bearer " + token);
    }
    options.headers = headers;
    return window.fetch(url, options).then(function (response) {
      var issued = bearerMode && tokenHeader ? response.headers.get(tokenHeader) : null;
      if (issued && issued !== token) storeToken(issued);
      return response;
    });
  }

  var fetcher = GraphiQL.createFetcher({
    url: window.location.pathname,
    fetch: sessionFetch,
    headers: { accept: "application/json" },
    enableIncrementalDelivery: false,
  });

  renderBar();
  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: true,
    })
  );
})();
