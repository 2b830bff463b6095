// Shows the portal's UTC instants in the reader's own time zone, where the browser
// can; the server's UTC text stays when it cannot.
(function () {
  "use strict";
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    return;
  }
  var nodes = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < nodes.length; i++) {
    var node = nodes[i];
    var text = node.getAttribute("datetime");
    // Dates without a time (YYYY-MM-DD) and day-only cells stay as the server wrote them.
    if (!text || text.length < 11 || /^\d{4}-\d{2}-\d{2}$/.test(node.textContent.trim())) {
      continue;
    }
    var when = new Date(text);
    if (!isNaN(when.getTime())) {
      node.title = node.textContent;
      node.textContent = format.format(when);
    }
  }
})();
