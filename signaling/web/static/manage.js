// The web manager's only script: the dashboard's live figures over Server-Sent Events, and a
// confirmation before destructive buttons. Pages work without it (they are plain HTML forms).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  var root = document.querySelector("[data-live-url]");
  if (!root || !window.EventSource) return;
  var spark = document.querySelector("svg.spark polyline");
  function show(key, value) {
    var nodes = document.querySelectorAll('[data-live="' + key + '"]');
    for (var i = 0; i < nodes.length; i++) {
      var suffix = nodes[i].getAttribute("data-suffix") || "";
      nodes[i].textContent = value === null || value === undefined ? "—" : value + suffix;
    }
  }
  function draw(values) {
    if (!spark || !values || !values.length) return;
    var top = Math.max(1, Math.max.apply(null, values)), n = Math.max(2, values.length), pts = [];
    for (var i = 0; i < values.length; i++) {
      pts.push((120 * i / (n - 1)).toFixed(1) + "," + (30 - 30 * values[i] / top).toFixed(1));
    }
    spark.setAttribute("points", pts.join(" "));
  }
  var source = new EventSource(root.getAttribute("data-live-url"));
  source.onmessage = function (event) {
    var data = JSON.parse(event.data);
    for (var key in data) if (key !== "spark") show(key, data[key]);
    draw(data.spark);
    root.setAttribute("data-live-state", "live");
  };
  source.addEventListener("expired", function () { source.close(); window.location.reload(); });
  source.onerror = function () { root.setAttribute("data-live-state", "reconnecting"); };
})();
